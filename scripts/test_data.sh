# Test data that comes from PyPI rather than the repository: sourced by test.sh.
# prepare_test_data fills TEST_CMAKE_ARGS with the cache variables that point
# the tests at it.
TEST_CMAKE_ARGS=()
prepare_test_data() {
  :
}

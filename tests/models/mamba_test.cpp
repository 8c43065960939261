#include "models/mamba.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

#include <unistd.h>

#include "models/safetensors.h"
#include "tests/models/mamba_fixture.h"
#include "tests/models/safetensors_writer.h"

namespace thalamus::models {
namespace {

namespace fs = std::filesystem;

using testing_support::kMambaHfDir;
using testing_support::kMambaStateSpacesDir;
using testing_support::MambaExpected;
using testing_support::MambaExpectedIds;

void ExpectClose(const torch::Tensor& actual, const torch::Tensor& expected, const std::string& what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  EXPECT_TRUE(torch::allclose(actual, expected, /*rtol=*/6e-4, /*atol=*/2e-3))
      << what << ": max abs difference " << (actual - expected).abs().max().item<float>();
}

class MambaFidelityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MambaFidelityTest, PrefillLogitsMatchTransformers) {
  std::unique_ptr<MambaModel> model = MambaModel::Load(GetParam());
  EXPECT_EQ(model->VocabSize(), 1008);
  for (const char* which : {"a", "b"}) {
    std::vector<int32_t> ids = MambaExpectedIds(std::string("ids_") + which);
    auto state = model->NewState(1);
    ExpectClose(model->Prefill(*state, 0, ids, true), MambaExpected().Load(std::string("logits_") + which), which);
    torch::Tensor last = model->Prefill(*state, 0, ids, false);
    ExpectClose(last, MambaExpected().Load(std::string("logits_") + which).narrow(0, ids.size() - 1, 1), which);
  }
}

TEST_P(MambaFidelityTest, StepByStepDecodeMatchesPrefill) {
  std::unique_ptr<MambaModel> model = MambaModel::Load(GetParam());
  std::vector<int32_t> ids = MambaExpectedIds("ids_a");
  torch::Tensor expected = MambaExpected().Load("logits_a");
  for (size_t prompt : {size_t{1}, size_t{3}, size_t{7}}) {  // shorter and longer than the conv window
    auto state = model->NewState(1);
    ExpectClose(model->Prefill(*state, 0, std::span(ids).first(prompt), false), expected.narrow(0, prompt - 1, 1),
                "prefill");
    for (size_t t = prompt; t < ids.size(); ++t) {
      ExpectClose(model->Step(*state, std::span(ids).subspan(t, 1)), expected.narrow(0, t, 1),
                  "step " + std::to_string(t));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BothNamings, MambaFidelityTest, ::testing::Values(kMambaHfDir, kMambaStateSpacesDir),
                         [](const auto& info) {
                           return info.param == kMambaHfDir ? std::string("transformers") : std::string("state_spaces");
                         });

TEST(MambaTest, BatchedStepMatchesSingleSequences) {
  std::unique_ptr<MambaModel> model = MambaModel::Load(kMambaHfDir);
  std::vector<int32_t> a = MambaExpectedIds("ids_a"), b = MambaExpectedIds("ids_b");
  auto state = model->NewState(3);
  model->Prefill(*state, 0, std::span(a).first(10), false);
  model->Prefill(*state, 1, std::span(b).first(1), false);
  torch::Tensor expected_a = MambaExpected().Load("logits_a"), expected_b = MambaExpected().Load("logits_b");
  for (int t = 0; t < 4; ++t) {
    std::vector<int32_t> tokens = {a[10 + t], b[1 + t]};
    torch::Tensor logits = model->Step(*state, tokens);
    ExpectClose(logits[0], expected_a[10 + t], "a");
    ExpectClose(logits[1], expected_b[1 + t], "b");
  }
  // Moving b into slot 0 keeps its history.
  model->CopySlot(*state, 1, 0);
  ExpectClose(model->Step(*state, std::vector<int32_t>{b[5]})[0], expected_b[5], "b after CopySlot");
}

TEST(MambaTest, ReadsBothConfigNamings) {
  MambaConfig hf = MambaConfig::FromFile(kMambaHfDir + "/config.json");
  MambaConfig ss = MambaConfig::FromFile(kMambaStateSpacesDir + "/config.json");
  for (const MambaConfig* c : {&hf, &ss}) {
    EXPECT_EQ(c->d_model, 64);
    EXPECT_EQ(c->n_layer, 2);
    EXPECT_EQ(c->vocab_size, 1008);  // state-spaces says 1003, padded to a multiple of 8
    EXPECT_EQ(c->d_inner, 128);
    EXPECT_EQ(c->dt_rank, 4);
    EXPECT_EQ(c->d_state, 16);
    EXPECT_EQ(c->d_conv, 4);
  }
  EXPECT_EQ(hf.eos_token_id, 0);
}

TEST(MambaTest, Bfloat16RunsCloseToFloat32) {
  std::unique_ptr<MambaModel> model = MambaModel::Load(kMambaHfDir, torch::kBFloat16);
  std::vector<int32_t> ids = MambaExpectedIds("ids_b");
  auto state = model->NewState(1);
  torch::Tensor logits = model->Prefill(*state, 0, ids, true);
  EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
  // bf16 keeps ~3 significant digits per operation: compare relative error norms.
  torch::Tensor expected = MambaExpected().Load("logits_b");
  float relative = ((logits - expected).norm() / expected.norm()).item<float>();
  EXPECT_LT(relative, 0.03f) << relative;
  EXPECT_GT(relative, 0.0f);  // it really ran in bfloat16
  torch::Tensor step = model->Step(*state, std::vector<int32_t>{5});
  EXPECT_EQ(step.sizes(), (c10::IntArrayRef{1, 1008}));
  EXPECT_TRUE(torch::isfinite(step).all().item<bool>());
}

TEST(MambaTest, RejectsIdsOutsideTheVocabulary) {
  std::unique_ptr<MambaModel> model = MambaModel::Load(kMambaHfDir);
  auto state = model->NewState(1);
  EXPECT_THROW(model->Prefill(*state, 0, std::vector<int32_t>{1, 1008}, false), std::invalid_argument);
  EXPECT_THROW(model->Prefill(*state, 0, std::vector<int32_t>{-1}, false), std::invalid_argument);
  EXPECT_THROW(model->Prefill(*state, 1, std::vector<int32_t>{1}, false), std::invalid_argument);
  EXPECT_THROW(model->Prefill(*state, 0, std::vector<int32_t>{}, false), std::invalid_argument);
  EXPECT_THROW(model->Step(*state, std::vector<int32_t>{1, 2}), std::invalid_argument);
}

// Broken checkpoints, written from the good one.
class MambaBrokenCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mamba_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    fs::copy_file(kMambaStateSpacesDir + "/config.json", dir_ / "config.json");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The fixture's tensors, with `edit` applied to the list.
  void WriteWeights(const std::function<void(std::vector<testing_support::RawTensor>&)>& edit) {
    SafeTensors good = SafeTensors::Open(kMambaStateSpacesDir + "/model.safetensors");
    std::vector<testing_support::RawTensor> tensors;
    for (const std::string& name : good.Names()) {
      tensors.push_back({name, "F32", good.Shape(name), testing_support::Bytes(good.Load(name))});
    }
    edit(tensors);
    std::ofstream(dir_ / "model.safetensors", std::ios::binary) << testing_support::Serialize(tensors);
  }

  std::string LoadError() {
    try {
      MambaModel::Load(dir_.string());
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(MambaBrokenCheckpointTest, MissingTensorIsNamed) {
  WriteWeights([](auto& tensors) {
    std::erase_if(tensors, [](const auto& t) { return t.name == "backbone.layers.1.mixer.A_log"; });
  });
  EXPECT_NE(LoadError().find("no tensor named 'backbone.layers.1.mixer.A_log'"), std::string::npos) << LoadError();
}

TEST_F(MambaBrokenCheckpointTest, ShapeMismatchShowsBothShapes) {
  WriteWeights([](auto& tensors) {
    for (auto& t : tensors) {
      if (t.name == "backbone.layers.0.mixer.x_proj.weight") {
        t.shape = {128, 36};
      }
    }
  });
  std::string error = LoadError();
  EXPECT_NE(error.find("'backbone.layers.0.mixer.x_proj.weight' has shape [128, 36], expected [36, 128]"),
            std::string::npos)
      << error;
}

TEST_F(MambaBrokenCheckpointTest, ExtraLayerMeansWrongConfig) {
  WriteWeights([](auto& tensors) {
    tensors.push_back({"backbone.layers.2.norm.weight", "F32", {64}, std::string(256, '\0')});
  });
  std::string error = LoadError();
  EXPECT_NE(error.find("unexpected tensor 'backbone.layers.2.norm.weight'"), std::string::npos) << error;
  EXPECT_NE(error.find("n_layer 2"), std::string::npos) << error;
}

TEST_F(MambaBrokenCheckpointTest, MissingWeightsAndUnsupportedConfigs) {
  std::string error = LoadError();
  EXPECT_NE(error.find("no model.safetensors"), std::string::npos) << error;
  std::ofstream(dir_ / "pytorch_model.bin") << "pickle";
  EXPECT_NE(LoadError().find("only pytorch_model.bin found"), std::string::npos);

  WriteWeights([](auto&) {});
  std::ofstream(dir_ / "config.json")
      << R"({"d_model": 64, "n_layer": 2, "vocab_size": 1003, "ssm_cfg": {"layer": "Mamba2"}})";
  EXPECT_NE(LoadError().find("layer: \"Mamba2\" is not supported"), std::string::npos) << LoadError();
  std::ofstream(dir_ / "config.json")
      << R"({"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 1008, "model_type": "mamba2"})";
  EXPECT_NE(LoadError().find("model_type"), std::string::npos) << LoadError();
  std::ofstream(dir_ / "config.json") << R"({"d_model": 64, "n_layer": "two", "vocab_size": 1003})";
  EXPECT_NE(LoadError().find("n_layer: must be an integer"), std::string::npos) << LoadError();
  std::ofstream(dir_ / "config.json") << R"({"n_embd": 64})";
  EXPECT_NE(LoadError().find("neither a state-spaces"), std::string::npos) << LoadError();
  EXPECT_NE(([] {
              try {
                MambaModel::Load("/nonexistent/model");
              } catch (const std::runtime_error& e) {
                return std::string(e.what());
              }
              return std::string();
            })()
                .find("not a directory"),
            std::string::npos);
}

}  // namespace
}  // namespace thalamus::models

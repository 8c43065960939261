#include "models/safetensors.h"

#include "tests/models/safetensors_writer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

namespace thalamus::models {
namespace {

namespace fs = std::filesystem;
using testing_support::Bytes;
using testing_support::RawTensor;
using testing_support::Serialize;

class SafeTensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("safetensors_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& contents) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  fs::path dir_;
};

std::string ErrorOf(const std::function<void()>& action) {
  try {
    action();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST_F(SafeTensorsTest, ReadsF32TensorsAndShapes) {
  torch::Tensor weight = torch::arange(6, torch::kFloat32).reshape({2, 3});
  torch::Tensor bias = torch::tensor({-1.5f, 2.25f});
  // An odd header length puts the data off its natural alignment.
  std::string path =
      Write("a.safetensors",
            Serialize({{"layer.weight", "F32", {2, 3}, Bytes(weight)}, {"layer.bias", "F32", {2}, Bytes(bias)}}, 3));
  SafeTensors tensors = SafeTensors::Open(path);
  EXPECT_EQ(tensors.Names(), (std::vector<std::string>{"layer.bias", "layer.weight"}));
  EXPECT_TRUE(tensors.Has("layer.weight"));
  EXPECT_FALSE(tensors.Has("__metadata__"));
  EXPECT_EQ(tensors.Shape("layer.weight"), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(torch::equal(tensors.Load("layer.weight"), weight));
  EXPECT_TRUE(torch::equal(tensors.Load("layer.bias", {2}), bias));
  EXPECT_EQ(tensors.Load("layer.bias", torch::kFloat64).scalar_type(), torch::kFloat64);
}

TEST_F(SafeTensorsTest, ConvertsHalfAndBFloat16ToF32) {
  torch::Tensor values = torch::tensor({0.5f, -3.0f, 1024.0f, 1e-3f});
  std::string path = Write("half.safetensors", Serialize({{"h", "F16", {4}, Bytes(values.to(torch::kFloat16))},
                                                          {"b", "BF16", {2, 2}, Bytes(values.to(torch::kBFloat16))}}));
  SafeTensors tensors = SafeTensors::Open(path);
  EXPECT_EQ(tensors.DType("b"), "BF16");
  EXPECT_TRUE(torch::equal(tensors.Load("h"), values.to(torch::kFloat16).to(torch::kFloat32)));
  EXPECT_TRUE(torch::equal(tensors.Load("b"), values.to(torch::kBFloat16).to(torch::kFloat32).reshape({2, 2})));
  EXPECT_NEAR(tensors.Load("h")[3].item<float>(), 1e-3f, 1e-6f);
}

TEST_F(SafeTensorsTest, ShapeMismatchNamesTensorAndBothShapes) {
  std::string path = Write("a.safetensors", Serialize({{"w", "F32", {2, 3}, std::string(24, '\0')}}));
  std::string error = ErrorOf([&] { SafeTensors::Open(path).Load("w", {3, 2}); });
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_NE(error.find("'w'"), std::string::npos) << error;
  EXPECT_NE(error.find("[2, 3]"), std::string::npos) << error;
  EXPECT_NE(error.find("[3, 2]"), std::string::npos) << error;
}

TEST_F(SafeTensorsTest, MissingTensorIsNamed) {
  std::string path = Write("a.safetensors", Serialize({{"w", "F32", {1}, std::string(4, '\0')}}));
  std::string error = ErrorOf([&] { SafeTensors::Open(path).Load("embedding.weight"); });
  EXPECT_NE(error.find("embedding.weight"), std::string::npos) << error;
  EXPECT_NE(error.find(path), std::string::npos) << error;
}

TEST_F(SafeTensorsTest, TruncatedFilesAreRejected) {
  std::string whole = Serialize({{"w", "F32", {4}, std::string(16, '\1')}});
  for (size_t keep : {size_t{0}, size_t{5}, size_t{20}, whole.size() - 1}) {
    std::string path = Write("cut.safetensors", whole.substr(0, keep));
    std::string error = ErrorOf([&] { SafeTensors::Open(path); });
    EXPECT_NE(error.find("truncated"), std::string::npos) << keep << ": " << error;
    EXPECT_NE(error.find(path), std::string::npos) << error;
  }
}

TEST_F(SafeTensorsTest, BadHeadersAreRejected) {
  std::string huge(8, '\0');
  huge[6] = 1;  // a length of 2^48
  EXPECT_NE(ErrorOf([&] { SafeTensors::Open(Write("h", huge + "{}")); }).find("too large"), std::string::npos);

  std::string not_json = std::string("\x05\0\0\0\0\0\0\0", 8) + "{oops";
  EXPECT_NE(ErrorOf([&] { SafeTensors::Open(Write("j", not_json)); }).find("bad header JSON"), std::string::npos);

  std::string array = std::string("\x02\0\0\0\0\0\0\0", 8) + "[]";
  EXPECT_NE(ErrorOf([&] { SafeTensors::Open(Write("k", array)); }).find("not a JSON object"), std::string::npos);

  std::string wrong_size = Serialize({{"w", "F32", {3}, std::string(8, '\0')}});
  std::string error = ErrorOf([&] { SafeTensors::Open(Write("s", wrong_size)); });
  EXPECT_NE(error.find("'w'"), std::string::npos) << error;
  EXPECT_NE(error.find("needs 12 bytes"), std::string::npos) << error;

  // 2^61 doubles need 2^64 bytes, which wrapped to 0 and matched empty offsets.
  std::string wraps = Serialize({{"w", "F64", {int64_t{1} << 61}, ""}});
  error = ErrorOf([&] { SafeTensors::Open(Write("o", wraps)); });
  EXPECT_NE(error.find("needs over 2^64 bytes"), std::string::npos) << error;

  std::string negative = Serialize({{"w", "F32", {-1}, ""}});
  EXPECT_NE(ErrorOf([&] { SafeTensors::Open(Write("n", negative)); }).find("negative"), std::string::npos);
}

TEST_F(SafeTensorsTest, UnknownAndUnsupportedDTypes) {
  std::string unknown = Serialize({{"w", "Q4", {1}, std::string(1, '\0')}});
  EXPECT_NE(ErrorOf([&] { SafeTensors::Open(Write("u", unknown)); }).find("unknown dtype 'Q4'"), std::string::npos);

  std::string fp8 = Serialize({{"w", "F8_E4M3", {2}, std::string(2, '\0')}});
  SafeTensors tensors = SafeTensors::Open(Write("f", fp8));
  EXPECT_EQ(tensors.Shape("w"), (std::vector<int64_t>{2}));
  std::string error = ErrorOf([&] { tensors.Load("w"); });
  EXPECT_NE(error.find("F8_E4M3 is not supported"), std::string::npos) << error;
}

TEST_F(SafeTensorsTest, LoadedTensorsOutliveTheReader) {
  torch::Tensor values = torch::randn({16});
  torch::Tensor loaded;
  {
    SafeTensors tensors = SafeTensors::Open(Write("a.safetensors", Serialize({{"x", "F32", {16}, Bytes(values)}})));
    loaded = tensors.Load("x");
  }
  fs::remove(dir_ / "a.safetensors");
  EXPECT_TRUE(torch::equal(loaded, values));
}

TEST_F(SafeTensorsTest, DirectoryWithSingleFile) {
  Write("model.safetensors", Serialize({{"x", "F32", {1}, Bytes(torch::ones({1}))}}));
  EXPECT_EQ(SafeTensors::OpenDirectory(dir_.string()).Load("x").item<float>(), 1.0f);
}

TEST_F(SafeTensorsTest, DirectoryWithShards) {
  Write("model-00001-of-00002.safetensors", Serialize({{"a", "F32", {1}, Bytes(torch::full({1}, 2.0f))}}));
  Write("model-00002-of-00002.safetensors",
        Serialize({{"b", "BF16", {1}, Bytes(torch::full({1}, 3.0f, torch::kBFloat16))}}));
  nlohmann::json index = {
      {"metadata", {{"total_size", 6}}},
      {"weight_map", {{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00002-of-00002.safetensors"}}}};
  Write("model.safetensors.index.json", index.dump());
  SafeTensors tensors = SafeTensors::OpenDirectory(dir_.string());
  EXPECT_EQ(tensors.Names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(tensors.Load("a").item<float>(), 2.0f);
  EXPECT_EQ(tensors.Load("b").item<float>(), 3.0f);

  index["weight_map"]["c"] = "model-00002-of-00002.safetensors";
  Write("model.safetensors.index.json", index.dump());
  std::string error = ErrorOf([&] { SafeTensors::OpenDirectory(dir_.string()); });
  EXPECT_NE(error.find("'c'"), std::string::npos) << error;
}

TEST_F(SafeTensorsTest, ShardsMustBeFilesInTheFolder) {
  for (const char* shard : {"../model.safetensors", "/etc/passwd", "..", ""}) {
    nlohmann::json index = {{"weight_map", {{"a", shard}}}};
    Write("model.safetensors.index.json", index.dump());
    std::string error = ErrorOf([&] { SafeTensors::OpenDirectory(dir_.string()); });
    EXPECT_NE(error.find("is not a file name in this folder"), std::string::npos) << shard << ": " << error;
  }
  Write("model.safetensors.index.json", "{\"weight_map\": [1]}");
  EXPECT_NE(ErrorOf([&] { SafeTensors::OpenDirectory(dir_.string()); }).find("no 'weight_map' object"),
            std::string::npos);
}

TEST_F(SafeTensorsTest, DirectoryWithoutWeights) {
  std::string error = ErrorOf([&] { SafeTensors::OpenDirectory(dir_.string()); });
  EXPECT_NE(error.find("no model.safetensors"), std::string::npos) << error;
  EXPECT_NE(error.find(dir_.string()), std::string::npos) << error;
  EXPECT_NE(ErrorOf([&] { SafeTensors::Open((dir_ / "absent").string()); }).find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace thalamus::models

// The gate's labelled examples: one JSON object per line, errors naming the line.
#include "gate/gate_examples.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "tests/support/process.h"

namespace thalamus::gate {
namespace {

std::string ErrorOf(const std::string& path) {
  try {
    ReadGateExamples(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(GateExamples, ReadsTextAndExpertSkippingBlankLines) {
  testing::TempDir dir;
  const std::string path = dir.Write(
      "ok.jsonl", "{\"text\": \"hi\", \"expert\": \"chat\"}\n\n  \n{\"text\": \"x\", \"expert\": \"code\"}\n");
  const std::vector<GateExample> examples = ReadGateExamples(path);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].text, "hi");
  EXPECT_EQ(examples[1].expert, "code");
}

TEST(GateExamples, BadLinesAreErrorsNamingFileAndLine) {
  testing::TempDir dir;
  EXPECT_NE(ErrorOf(dir.Write("bad.jsonl", "{\"text\": \"ok\", \"expert\": \"code\"}\n\n{\"text\": \"no expert\"}\n"))
                .find("bad.jsonl:3: \"expert\" must be"),
            std::string::npos);
  EXPECT_NE(ErrorOf(dir.Write("notjson.jsonl", "[1, 2]\n")).find(":1: not a JSON object"), std::string::npos);
  EXPECT_NE(
      ErrorOf(dir.Write("empty_text.jsonl", "{\"text\": \"\", \"expert\": \"code\"}\n")).find(":1: \"text\" must be"),
      std::string::npos);
  EXPECT_NE(ErrorOf(dir.path() + "/missing.jsonl").find("cannot read the examples file"), std::string::npos);
}

}  // namespace
}  // namespace thalamus::gate

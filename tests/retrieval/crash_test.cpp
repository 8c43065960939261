// An ingest killed at any moment must leave the previous index readable.
// The writer runs in a forked child that is SIGKILLed, by an armed crash point
// at the worst places and by the parent at random moments.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <regex>
#include <thread>

#include "retrieval/durable_file.h"
#include "retrieval/retrieval.h"
#include "tests/retrieval/temp_tree.h"

namespace thalamus::retrieval {
namespace {

using testing::TempTree;

IngestOptions Options(const TempTree& tree) {
  IngestOptions options;
  options.domain = "crash";
  options.chunking = {300, 50};
  options.index.type = IndexType::kHnsw;
  options.base_dir = tree.root().string();
  return options;
}

// A document big enough that writing it takes a while.
std::string Document(const std::string& word, int paragraphs) {
  std::string text;
  for (int i = 0; i < paragraphs; ++i) text += "Paragraph " + std::to_string(i) + " is about " + word + " only.\n\n";
  return text;
}

// Runs `body` in a child process; returns its wait status.
template <typename Body>
int RunChild(Body body, std::chrono::milliseconds kill_after = std::chrono::milliseconds(-1)) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    try {
      body();
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  if (kill_after.count() >= 0) {
    std::this_thread::sleep_for(kill_after);
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

// Every chunk must come whole from one version of the document (all chunks
// from the same one), and the index must agree with the chunk table.
void ExpectConsistent(const std::string& index, const std::regex& allowed) {
  Retriever retriever(index, std::make_shared<HashingEmbedder>());
  ASSERT_GT(retriever.size(), 0u);
  const auto store = DomainStore::Open(index, DomainStore::Mode::kRead);
  ASSERT_EQ(store->index()->size(), store->chunks().size());
  uint64_t expected_chunks = 0;
  for (const auto& [key, source] : store->sources()) expected_chunks += source.chunks;
  EXPECT_EQ(expected_chunks, store->chunks().size());
  static const std::regex about("about (\\w+) only");
  std::string version;
  for (const ChunkRecord& chunk : store->chunks()) {
    for (std::sregex_iterator it(chunk.text.begin(), chunk.text.end(), about), end; it != end; ++it) {
      const std::string word = (*it)[1].str();
      ASSERT_TRUE(std::regex_match(word, allowed)) << word;
      if (version.empty()) version = word;
      ASSERT_EQ(word, version) << "chunks of two versions mixed";
    }
  }
  EXPECT_FALSE(version.empty());
}

class CrashPointTest : public ::testing::TestWithParam<const char*> {};

TEST_P(CrashPointTest, KilledWriterLeavesAReadableIndex) {
  TempTree tree;
  const std::string file = tree.Write("doc.md", Document("apples", 200));
  const std::string index = tree.Path("index");
  Ingest(index, HashingEmbedder(), {file}, Options(tree));
  const size_t old_size = Retriever(index, std::make_shared<HashingEmbedder>()).size();

  tree.Write("doc.md", Document("bananas", 150));
  const std::string point = GetParam();
  const int status = RunChild([&] {
    ArmCrashPoint(point);
    Ingest(index, HashingEmbedder(), {file}, Options(tree));
  });
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the crash point did not fire; status " << status;

  const bool committed = point == "store:after-manifest";
  Retriever retriever(index, std::make_shared<HashingEmbedder>());
  const std::vector<Passage> hits = retriever.Search("about apples bananas", 1);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_NE(hits[0].text.find(committed ? "bananas" : "apples"), std::string::npos) << hits[0].text;
  if (!committed) {
    EXPECT_EQ(retriever.size(), old_size);
  }
  ExpectConsistent(index, std::regex("apples|bananas"));

  // The next writer finishes the job and sweeps up what the dead one left.
  const IngestReport report = Ingest(index, HashingEmbedder(), {file}, Options(tree));
  EXPECT_EQ(report.files_updated + report.files_unchanged, 1u);
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(index)) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
    ++files;
  }
  EXPECT_EQ(files, 5u);  // manifest, LOCK, chunks, vectors, index of one generation
  ExpectConsistent(index, std::regex("bananas"));
}

INSTANTIATE_TEST_SUITE_P(Points, CrashPointTest,
                         ::testing::Values("store:vectors-half-written", "store:before-manifest",
                                           "store:after-manifest"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

TEST(Crash, KilledAtRandomMomentsWhileRewriting) {
  TempTree tree;
  const std::string file = tree.Path("doc.md");
  const std::string index = tree.Path("index");
  tree.Write("doc.md", Document("word0", 300));
  Ingest(index, HashingEmbedder(), {file}, Options(tree));
  std::mt19937 rng(11);
  for (int round = 0; round < 6; ++round) {
    const int status = RunChild(
        [&] {
          for (int version = 1;; ++version) {
            tree.Write("doc.md", Document("word" + std::to_string(version), 300 + version % 7));
            Ingest(index, HashingEmbedder(), {file}, Options(tree));
          }
        },
        std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 400)(rng)));
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself: status " << status;
    SCOPED_TRACE("round " + std::to_string(round));
    ExpectConsistent(index, std::regex("word[0-9]+"));
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace thalamus::retrieval

#include "retrieval/ingest.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "retrieval/retrieval.h"
#include "tests/retrieval/temp_tree.h"

namespace thalamus::retrieval {
namespace {

using testing::TempTree;

IngestOptions Options(const TempTree& tree, IndexType type = IndexType::kFlat) {
  IngestOptions options;
  options.domain = "docs";
  options.chunking = {200, 40};
  options.index.type = type;
  options.base_dir = tree.root().string();
  return options;
}

std::shared_ptr<const Embedder> Hashing() { return std::make_shared<HashingEmbedder>(); }

bool AnyChunkContains(const DomainStore& store, const std::string& needle) {
  return std::any_of(store.chunks().begin(), store.chunks().end(),
                     [&](const ChunkRecord& c) { return c.text.find(needle) != std::string::npos; });
}

std::unique_ptr<DomainStore> Reopen(const std::string& dir) { return DomainStore::Open(dir, DomainStore::Mode::kRead); }

// A small corpus with everything a repository has besides documentation.
void WriteCorpus(const TempTree& tree) {
  tree.Write("src/README.md", "# Gate\n\nThe gate is a small MLP trained offline from labelled examples.\n");
  tree.Write("src/broker.cpp",
             "// The broker picks the least-loaded live worker and enforces deadlines.\nint Pick();\n");
  tree.Write("src/notes.txt", "Kubernetes manifests deploy the router and one Deployment per expert kind.\n");
  tree.Write("src/image.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
  tree.Write("src/build/generated.cpp", "// generated: the gate is trained\n");
  tree.Write("src/build-release/more.cpp", "// generated too\n");
  tree.Write("src/.git/config", "[core] the gate is trained\n");
  tree.Write("src/node_modules/dep/index.js", "module.exports = 'gate';\n");
}

TEST(Ingest, WalksDirectoriesSkippingBinaryHiddenAndBuildFiles) {
  TempTree tree;
  WriteCorpus(tree);
  const std::string index = tree.Path("index");
  const IngestReport report = Ingest(index, HashingEmbedder(), {tree.Path("src")}, Options(tree));
  EXPECT_EQ(report.files_added, 3u);
  EXPECT_EQ(report.files_skipped, 1u);  // the PNG
  EXPECT_EQ(report.files_failed, 0u);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("src/image.png: skipped: binary"), std::string::npos) << report.problems[0];
  EXPECT_EQ(report.total_chunks, 3u);

  const auto store = Reopen(index);
  EXPECT_EQ(store->sources().size(), 3u);
  std::vector<std::string> sources;
  for (const ChunkRecord& c : store->chunks()) sources.push_back(c.source);
  std::sort(sources.begin(), sources.end());
  EXPECT_EQ(sources, (std::vector<std::string>{"src/README.md", "src/broker.cpp", "src/notes.txt"}));

  Retriever retriever(index, Hashing());
  const std::vector<Passage> passages = retriever.Search("how is the gate trained?", 2);
  ASSERT_EQ(passages.size(), 2u);
  EXPECT_EQ(passages[0].source, "src/README.md");
  EXPECT_EQ(passages[0].domain, "docs");
  EXPECT_EQ(passages[0].start, 0u);
  EXPECT_GT(passages[0].score, passages[1].score);
}

TEST(Ingest, IncludeAndExcludePatterns) {
  TempTree tree;
  WriteCorpus(tree);
  IngestOptions options = Options(tree);
  options.include = {"*.md", "*.cpp"};
  options.exclude = {"broker*"};
  const IngestReport report = Ingest(tree.Path("index"), HashingEmbedder(), {tree.Path("src")}, options);
  EXPECT_EQ(report.files_added, 1u);
  EXPECT_EQ(Reopen(tree.Path("index"))->chunks().at(0).source, "src/README.md");
}

TEST(Ingest, UnchangedFilesAreLeftAlone) {
  TempTree tree;
  WriteCorpus(tree);
  const std::string index = tree.Path("index");
  Ingest(index, HashingEmbedder(), {tree.Path("src")}, Options(tree));
  const uint64_t generation = Reopen(index)->info().generation;
  const IngestReport again = Ingest(index, HashingEmbedder(), {tree.Path("src")}, Options(tree));
  EXPECT_EQ(again.files_unchanged, 3u);
  EXPECT_EQ(again.files_added + again.files_updated, 0u);
  EXPECT_EQ(Reopen(index)->info().generation, generation);  // nothing committed
}

TEST(Ingest, ChangedFileReplacesItsChunks) {
  TempTree tree;
  WriteCorpus(tree);
  const std::string index = tree.Path("index");
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "Paragraph " + std::to_string(i) + " talks about the old design.\n\n";
  tree.Write("src/design.md", long_text);
  Ingest(index, HashingEmbedder(), {tree.Path("src")}, Options(tree));
  const auto before = Reopen(index);
  const size_t old_design_chunks =
      before->sources().at(std::filesystem::canonical(tree.Path("src/design.md")).string()).chunks;
  ASSERT_GT(old_design_chunks, 5u);
  uint64_t broker_id = 0;
  for (const ChunkRecord& c : before->chunks()) broker_id = c.source == "src/broker.cpp" ? c.id : broker_id;

  tree.Write("src/design.md", "The new design replaces everything: a learned gate over embeddings.\n");
  const IngestReport report = Ingest(index, HashingEmbedder(), {tree.Path("src")}, Options(tree));
  EXPECT_EQ(report.files_updated, 1u);
  EXPECT_EQ(report.files_unchanged, 3u);
  EXPECT_EQ(report.chunks_removed, old_design_chunks);
  EXPECT_EQ(report.chunks_added, 1u);

  const auto after = Reopen(index);
  EXPECT_EQ(after->chunks().size(), 4u);
  EXPECT_FALSE(AnyChunkContains(*after, "old design"));
  EXPECT_TRUE(AnyChunkContains(*after, "new design"));
  for (const ChunkRecord& c : after->chunks()) {
    if (c.source == "src/broker.cpp") {
      EXPECT_EQ(c.id, broker_id) << "untouched files keep their chunk ids";
    }
  }
  Retriever retriever(index, Hashing());
  EXPECT_EQ(retriever.Search("new design learned gate", 1).at(0).source, "src/design.md");
}

TEST(Ingest, ChangingChunkOptionsRechunks) {
  TempTree tree;
  tree.Write("a.txt", std::string(1000, 'a'));
  const std::string index = tree.Path("index");
  Ingest(index, HashingEmbedder(), {tree.Path("a.txt")}, Options(tree));
  EXPECT_EQ(Reopen(index)->chunks().size(), 6u);  // 200 wide, 160 apart
  IngestOptions options = Options(tree);
  options.chunking = {500, 0};
  const IngestReport report = Ingest(index, HashingEmbedder(), {tree.Path("a.txt")}, options);
  EXPECT_EQ(report.files_updated, 1u);
  EXPECT_EQ(Reopen(index)->chunks().size(), 2u);
}

TEST(Ingest, PruneDropsFilesThatAreGone) {
  TempTree tree;
  WriteCorpus(tree);
  const std::string index = tree.Path("index");
  Ingest(index, HashingEmbedder(), {tree.Path("src")}, Options(tree));
  std::filesystem::remove(tree.Path("src/notes.txt"));
  IngestReport report = Ingest(index, HashingEmbedder(), {tree.Path("src")}, Options(tree));
  EXPECT_EQ(report.files_removed, 0u);  // prune is opt-in
  EXPECT_EQ(Reopen(index)->chunks().size(), 3u);
  IngestOptions options = Options(tree);
  options.prune = true;
  report = Ingest(index, HashingEmbedder(), {tree.Path("src")}, options);
  EXPECT_EQ(report.files_removed, 1u);
  EXPECT_EQ(Reopen(index)->chunks().size(), 2u);
  EXPECT_FALSE(AnyChunkContains(*Reopen(index), "Kubernetes"));
}

TEST(Ingest, JsonlRecordsBecomeDocumentsWithIdsAndMetadata) {
  TempTree tree;
  tree.Write("faq.jsonl",
             "{\"id\": \"faq-1\", \"text\": \"Experts connect to the router, not the other way round.\", "
             "\"metadata\": {\"lang\": \"en\", \"rank\": 3}}\n"
             "\n"
             "{\"id\": 42, \"text\": \"The broker answers 503 when no worker is live.\"}\n"
             "{\"text\": \"A record without an id is cited by file and line.\"}\n");
  tree.Write("bad.jsonl", "{\"id\": \"ok\", \"text\": \"fine\"}\n{\"id\": \"x\", \"body\": \"no text field\"}\n");
  tree.Write("plain.md", "Plain files still work next to JSONL.\n");
  const std::string index = tree.Path("index");
  const IngestReport report = Ingest(index, HashingEmbedder(), {tree.root().string()}, Options(tree));
  EXPECT_EQ(report.files_added, 2u);
  EXPECT_EQ(report.files_failed, 1u);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("bad.jsonl:2: missing string field \"text\""), std::string::npos)
      << report.problems[0];

  const auto store = Reopen(index);
  std::map<std::string, const ChunkRecord*> by_source;
  for (const ChunkRecord& c : store->chunks()) by_source[c.source] = &c;
  ASSERT_TRUE(by_source.count("faq-1"));
  ASSERT_TRUE(by_source.count("42"));
  ASSERT_TRUE(by_source.count("faq.jsonl:4"));
  EXPECT_EQ(nlohmann::json::parse(by_source["faq-1"]->metadata), nlohmann::json::parse(R"({"lang":"en","rank":3})"));
  EXPECT_EQ(by_source["42"]->text, "The broker answers 503 when no worker is live.");
  EXPECT_EQ(by_source["42"]->start, 0u);

  Retriever retriever(index, Hashing());
  const std::vector<Passage> hits = retriever.Search("what happens when no worker is live", 1);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].source, "42");
}

TEST(Ingest, RefusesAnotherEmbedderAndMissingPaths) {
  TempTree tree;
  WriteCorpus(tree);
  const std::string index = tree.Path("index");
  Ingest(index, HashingEmbedder(384), {tree.Path("src")}, Options(tree));
  EXPECT_THROW(Ingest(index, HashingEmbedder(512), {tree.Path("src")}, Options(tree)), std::runtime_error);
  EXPECT_THROW(Retriever(index, std::make_shared<HashingEmbedder>(512)), std::runtime_error);
  EXPECT_THROW(Ingest(index, HashingEmbedder(), {tree.Path("nope")}, Options(tree)), std::runtime_error);
  IngestOptions other_domain = Options(tree);
  other_domain.domain = "code";
  EXPECT_THROW(Ingest(index, HashingEmbedder(), {tree.Path("src")}, other_domain), std::runtime_error);
}

class IngestIndexTypes : public ::testing::TestWithParam<IndexType> {};

TEST_P(IngestIndexTypes, PersistsAndReloadsAndSwitchesType) {
  TempTree tree;
  for (int i = 0; i < 60; ++i) {
    tree.Write("docs/topic" + std::to_string(i) + ".md",
               "Topic number " + std::to_string(i) + " is about subject" + std::to_string(i) + " and nothing else.\n");
  }
  const std::string index = tree.Path("index");
  Ingest(index, HashingEmbedder(), {tree.Path("docs")}, Options(tree, GetParam()));
  {
    IndexOptions search;
    search.nprobe = 64;
    Retriever retriever(index, Hashing(), search);
    EXPECT_EQ(retriever.size(), 60u);
    EXPECT_EQ(retriever.info().index.type, GetParam());
    EXPECT_EQ(retriever.Search("subject17", 1).at(0).source, "docs/topic17.md");
  }
  // Rebuilding as another type keeps every chunk.
  const IndexType other = GetParam() == IndexType::kHnsw ? IndexType::kFlat : IndexType::kHnsw;
  Ingest(index, HashingEmbedder(), {tree.Path("docs")}, Options(tree, other));
  Retriever retriever(index, Hashing());
  EXPECT_EQ(retriever.info().index.type, other);
  EXPECT_EQ(retriever.size(), 60u);
  EXPECT_EQ(retriever.Search("subject42", 1).at(0).source, "docs/topic42.md");
}

INSTANTIATE_TEST_SUITE_P(AllTypes, IngestIndexTypes,
                         ::testing::Values(IndexType::kFlat, IndexType::kIvf, IndexType::kHnsw),
                         [](const auto& info) { return std::string(IndexTypeName(info.param)); });

TEST(Retriever, EmptyDomainAndRefresh) {
  TempTree tree;
  const std::string index = tree.Path("index");
  Retriever retriever(index, Hashing());
  EXPECT_EQ(retriever.size(), 0u);
  EXPECT_TRUE(retriever.Search("anything", 3).empty());
  EXPECT_FALSE(retriever.Refresh());
  WriteCorpus(tree);
  Ingest(index, HashingEmbedder(), {tree.Path("src")}, Options(tree));
  EXPECT_TRUE(retriever.Refresh());
  EXPECT_EQ(retriever.size(), 3u);
  EXPECT_FALSE(retriever.Refresh());
}

TEST(Retriever, DamagedIndexIsReportedNotCrashedOn) {
  TempTree tree;
  WriteCorpus(tree);
  const std::string index = tree.Path("index");
  Ingest(index, HashingEmbedder(), {tree.Path("src")}, Options(tree));
  const std::string chunks = tree.Path("index/chunks-1.jsonl");
  ASSERT_TRUE(std::filesystem::exists(chunks));
  std::filesystem::resize_file(chunks, std::filesystem::file_size(chunks) / 2);
  try {
    Retriever retriever(index, Hashing());
    FAIL() << "a truncated chunk file was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("damaged"), std::string::npos) << e.what();
  }
  std::ofstream(tree.Path("index/manifest.json")) << "{not json";
  EXPECT_THROW(Retriever(index, Hashing()), std::runtime_error);
}

}  // namespace
}  // namespace thalamus::retrieval

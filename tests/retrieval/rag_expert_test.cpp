// The rag expert end to end: built from its config block, serving passages.
#include <gtest/gtest.h>

#include <filesystem>

#include "experts/expert.h"
#include "retrieval/retrieval.h"
#include "tests/retrieval/temp_tree.h"

namespace thalamus::experts {
namespace {

using retrieval::testing::TempTree;

class FakeJob : public Job {
 public:
  explicit FakeJob(wire::ExpertRequestT request) : request_(std::move(request)) {}
  const wire::ExpertRequestT& request() const override { return request_; }
  bool cancelled() const override { return false; }
  void EmitText(std::string_view text) override { streamed += text; }
  std::string streamed;

 private:
  wire::ExpertRequestT request_;
};

wire::ExpertReplyT Ask(Expert& expert, const std::string& prompt, int top_k = 0, bool stream = false) {
  wire::ExpertRequestT request;
  request.prompt = prompt;
  request.top_k_passages = top_k;
  request.stream = stream;
  FakeJob job(std::move(request));
  wire::ExpertReplyT reply = expert.Serve(job);
  if (stream) {
    EXPECT_EQ(job.streamed, reply.text);
  }
  return reply;
}

config::ExpertConfig RagBlock(const TempTree& tree) {
  config::ExpertConfig c;
  c.name = "docs";
  c.kind = config::ExpertKind::kRag;
  c.file = tree.Write("conf/thalamus.yaml", "# the block's paths are relative to this file\n");
  c.index = "../data/index";  // relative to conf/
  c.sources = {"../docs", "../missing"};
  c.include = {"*.md"};
  c.chunk_size = 300;
  c.chunk_overlap = 50;
  c.index_type = config::IndexType::kHnsw;
  c.top_k = 2;
  return c;
}

void WriteDocs(const TempTree& tree) {
  tree.Write("docs/broker.md",
             "# Broker\n\nExperts connect to the router and heartbeat; the broker picks the least-loaded worker.\n");
  tree.Write("docs/gate.md", "# Gate\n\nThe gate is a small MLP trained offline from labelled examples.\n");
  tree.Write("docs/deploy.md", "# Deploy\n\nKubernetes manifests run one Deployment per expert kind.\n");
  tree.Write("docs/skip.txt", "not markdown: excluded by include\n");
}

TEST(RagExpert, BuildsItsIndexFromSourcesOnFirstStartAndServesPassages) {
  TempTree tree;
  WriteDocs(tree);
  const std::unique_ptr<Expert> expert = MakeExpert(RagBlock(tree));
  ASSERT_TRUE(std::filesystem::exists(tree.Path("data/index/manifest.json")));
  EXPECT_NE(expert->Model().find("rag/docs (hashing-v1:384, hnsw)"), std::string::npos) << expert->Model();

  const wire::ExpertReplyT reply = Ask(*expert, "how is the gate trained?");
  ASSERT_EQ(reply.status, wire::StatusCode::OK) << reply.error;
  ASSERT_EQ(reply.passages.size(), 2u);  // the block's top_k
  const wire::PassageT& best = *reply.passages[0];
  EXPECT_EQ(best.source, "docs/gate.md");  // outside conf/: relative to the folder of "../docs"
  EXPECT_EQ(best.domain, "docs");
  EXPECT_EQ(best.start, 0u);
  EXPECT_GT(best.chunk_id, 0u);
  EXPECT_GT(best.score, reply.passages[1]->score);
  EXPECT_FLOAT_EQ(reply.confidence, best.score);
  EXPECT_NE(reply.text.find("[1] docs/gate.md:0-"), std::string::npos) << reply.text;
  EXPECT_NE(reply.text.find("small MLP"), std::string::npos) << reply.text;
  EXPECT_EQ(reply.finish_reason, "stop");
}

TEST(RagExpert, RequestTopKChatMessagesStreamingAndBadQueries) {
  TempTree tree;
  WriteDocs(tree);
  const std::unique_ptr<Expert> expert = MakeExpert(RagBlock(tree));
  EXPECT_EQ(Ask(*expert, "kubernetes deployment", 3, /*stream=*/true).passages.size(), 3u);
  EXPECT_EQ(Ask(*expert, "kubernetes deployment", 50).passages.size(), 3u);  // all there is

  wire::ExpertRequestT chat;
  auto message = std::make_unique<wire::ChatMessageT>();
  message->role = "user";
  message->content = "which worker does the broker pick?";
  chat.messages.push_back(std::move(message));
  FakeJob job(std::move(chat));
  const wire::ExpertReplyT reply = expert->Serve(job);
  ASSERT_FALSE(reply.passages.empty());
  EXPECT_EQ(reply.passages[0]->source, "docs/broker.md");

  const wire::ExpertReplyT empty = Ask(*expert, "  \n");
  EXPECT_EQ(empty.status, wire::StatusCode::BAD_REQUEST);
  EXPECT_FALSE(empty.error.empty());
}

TEST(RagExpert, EmptyIndexWithoutSourcesAnswersWithNoPassages) {
  TempTree tree;
  config::ExpertConfig c = RagBlock(tree);
  c.sources.clear();
  const std::unique_ptr<Expert> expert = MakeExpert(c);
  const wire::ExpertReplyT reply = Ask(*expert, "anything");
  EXPECT_EQ(reply.status, wire::StatusCode::OK);
  EXPECT_TRUE(reply.passages.empty());
  EXPECT_EQ(reply.confidence, 0.0f);
  EXPECT_NE(reply.text.find("No passages"), std::string::npos);
}

TEST(RagExpert, BadBlocksAreClearErrors) {
  TempTree tree;
  config::ExpertConfig c = RagBlock(tree);
  c.embedder = "no-such-model-dir";
  try {
    MakeExpert(c);
    FAIL() << "a missing embedder directory was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-model-dir"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace thalamus::experts

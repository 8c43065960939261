// QueryPipeline: gate -> plan -> dispatch -> aggregate, against a fake
// Dispatcher that records each request and lets the test answer it. No
// sockets, no processes, no running loop: everything happens on the test
// thread through SubmitInLoop.
#include "router/query_pipeline.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "router/event_loop.h"
#include "router/metrics.h"

namespace thalamus::router {
namespace {

class FakeDispatcher : public Dispatcher {
 public:
  struct Sent {
    std::string service;
    wire::ExpertRequestT request;
    DispatchCallbacks callbacks;
    bool answered = false;
  };

  uint64_t Dispatch(const std::string& service, wire::ExpertRequestT request, Clock::time_point,
                    DispatchCallbacks callbacks) override {
    sent.push_back({service, std::move(request), std::move(callbacks)});
    const uint64_t id = sent.size();
    if (auto failure = fail.find(service); failure != fail.end()) Answer(id - 1, ErrorReply(failure->second));
    return id;
  }
  void Cancel(uint64_t request_id) override { cancelled.push_back(request_id); }
  std::vector<ServiceInfo> Services() const override { return services; }
  bool HasLiveWorker(const std::string& name) const override {
    for (const ServiceInfo& info : services) {
      if (info.name == name) return info.live_workers > 0;
    }
    return false;
  }
  const std::vector<ServiceInfo>& ServicesInLoop() const override { return services; }
  uint64_t snapshot_version() const override { return version; }

  static wire::ExpertReplyT ErrorReply(wire::StatusCode code) {
    wire::ExpertReplyT reply;
    reply.status = code;
    reply.error = "scripted " + std::string(messages::StatusName(code));
    return reply;
  }
  // Answers the index-th request sent.
  void Answer(size_t index, wire::ExpertReplyT reply, const std::string& worker = "w:1") {
    Sent& request = sent.at(index);
    ASSERT_FALSE(request.answered);
    request.answered = true;
    DispatchOutcome outcome;
    outcome.worker = worker;
    outcome.attempts = 1;
    request.callbacks.on_reply(std::move(reply), outcome);
  }
  void AnswerText(size_t index, const std::string& text, float confidence = 1.0f) {
    wire::ExpertReplyT reply;
    reply.text = text;
    reply.confidence = confidence;
    reply.prompt_tokens = 3;
    reply.completion_tokens = 2;
    reply.finish_reason = "stop";
    Answer(index, std::move(reply));
  }
  void AnswerPassages(size_t index, const std::vector<std::pair<std::string, float>>& passages) {
    wire::ExpertReplyT reply;
    for (const auto& [text, score] : passages) {
      auto passage = std::make_unique<wire::PassageT>();
      passage->text = text;
      passage->source = "doc:" + text;
      passage->score = score;
      reply.passages.push_back(std::move(passage));
    }
    Answer(index, std::move(reply));
  }

  std::vector<Sent> sent;
  std::vector<uint64_t> cancelled;
  std::map<std::string, wire::StatusCode> fail;  // services that fail at once
  std::vector<ServiceInfo> services;
  uint64_t version = 1;
};

config::ExpertConfig Expert(const std::string& name, config::ExpertKind kind) {
  config::ExpertConfig expert;
  expert.name = name;
  expert.kind = kind;
  return expert;
}

class QueryPipelineTest : public ::testing::Test {
 protected:
  void Configure(config::Aggregation aggregation, std::vector<config::ExpertConfig> experts) {
    config_.aggregation = aggregation;
    config_.experts = std::move(experts);
    for (const config::ExpertConfig& expert : config_.experts) {
      ServiceInfo info;
      info.name = expert.name;
      info.kind = config::Name(expert.kind);
      info.live_workers = 1;
      dispatcher_.services.push_back(info);
    }
    pipeline_ = std::make_unique<QueryPipeline>(config_, loop_, dispatcher_, metrics_);
  }
  void Submit(const std::vector<std::string>& experts = {}, const std::string& prompt = "what is thalamus?") {
    wire::QueryT query;
    query.prompt = prompt;
    query.experts = experts;
    QueryCallbacks callbacks;
    callbacks.on_partial = [this](std::string_view text) { partials_.emplace_back(text); };
    callbacks.on_result = [this](wire::QueryResultT result) {
      ASSERT_FALSE(result_.has_value()) << "on_result ran twice";
      result_ = std::move(result);
    };
    pipeline_->SubmitInLoop(std::move(query), std::move(callbacks));
  }
  const wire::TraceT& Trace() { return *result_->trace; }

  config::Config config_;
  EventLoop loop_;  // never started: SubmitInLoop needs none
  Metrics metrics_;
  FakeDispatcher dispatcher_;
  std::unique_ptr<QueryPipeline> pipeline_;
  std::optional<wire::QueryResultT> result_;
  std::vector<std::string> partials_;
};

TEST_F(QueryPipelineTest, Top1AnswersWithTheFirstChosenExpertThatAnswered) {
  Configure(config::Aggregation::kTop1,
            {Expert("a", config::ExpertKind::kEcho), Expert("b", config::ExpertKind::kEcho)});
  Submit({"a", "b"});
  ASSERT_EQ(dispatcher_.sent.size(), 2u);
  EXPECT_EQ(dispatcher_.sent[0].service, "a");
  EXPECT_EQ(dispatcher_.sent[1].service, "b");
  dispatcher_.AnswerText(1, "from b", 0.9f);
  EXPECT_FALSE(result_.has_value());  // waits for every chosen expert
  dispatcher_.AnswerText(0, "from a", 0.1f);
  ASSERT_TRUE(result_.has_value());
  EXPECT_EQ(result_->status, wire::StatusCode::OK);
  EXPECT_EQ(result_->answer, "from a");
  EXPECT_EQ(result_->prompt_tokens, 6u);
  EXPECT_EQ(Trace().plan, "direct");
  EXPECT_EQ(Trace().experts.size(), 2u);
}

TEST_F(QueryPipelineTest, WeightedPrefersGateProbabilityTimesConfidence) {
  Configure(config::Aggregation::kWeighted,
            {Expert("a", config::ExpertKind::kEcho), Expert("b", config::ExpertKind::kEcho)});
  Submit({"a", "b"});
  dispatcher_.AnswerText(0, "from a", 0.2f);
  dispatcher_.AnswerText(1, "from b", 0.9f);
  ASSERT_TRUE(result_.has_value());
  EXPECT_EQ(result_->answer, "from b");
}

TEST_F(QueryPipelineTest, ConcatTagsEveryAnswerWithItsService) {
  Configure(config::Aggregation::kConcat,
            {Expert("a", config::ExpertKind::kEcho), Expert("b", config::ExpertKind::kEcho)});
  Submit({"a", "b"});
  dispatcher_.AnswerText(0, "one");
  dispatcher_.AnswerText(1, "two");
  ASSERT_TRUE(result_.has_value());
  EXPECT_EQ(result_->answer, "[a] one\n\n[b] two");
}

TEST_F(QueryPipelineTest, FanOutWithOneFailingExpertAnswersFromTheOther) {
  Configure(config::Aggregation::kTop1,
            {Expert("a", config::ExpertKind::kEcho), Expert("b", config::ExpertKind::kEcho)});
  dispatcher_.fail["a"] = wire::StatusCode::UNAVAILABLE;
  Submit({"a", "b"});
  ASSERT_FALSE(result_.has_value());
  dispatcher_.AnswerText(1, "from b");
  ASSERT_TRUE(result_.has_value());
  EXPECT_EQ(result_->status, wire::StatusCode::OK);
  EXPECT_EQ(result_->answer, "from b");
  EXPECT_EQ(Trace().experts[0]->status, wire::StatusCode::UNAVAILABLE);
}

TEST_F(QueryPipelineTest, EveryExpertFailingReportsTheFirstFailure) {
  Configure(config::Aggregation::kTop1,
            {Expert("a", config::ExpertKind::kEcho), Expert("b", config::ExpertKind::kEcho)});
  dispatcher_.fail["a"] = wire::StatusCode::OVERLOADED;
  dispatcher_.fail["b"] = wire::StatusCode::DEADLINE_EXCEEDED;
  Submit({"a", "b"});
  ASSERT_TRUE(result_.has_value());  // immediate failures complete the query once, after both were sent
  EXPECT_EQ(dispatcher_.sent.size(), 2u);
  EXPECT_EQ(result_->status, wire::StatusCode::OVERLOADED);
}

TEST_F(QueryPipelineTest, AnUnknownNamedExpertIsNotFoundAndNothingIsSent) {
  Configure(config::Aggregation::kTop1, {Expert("a", config::ExpertKind::kEcho)});
  Submit({"nobody"});
  ASSERT_TRUE(result_.has_value());
  EXPECT_EQ(result_->status, wire::StatusCode::NOT_FOUND);
  EXPECT_TRUE(dispatcher_.sent.empty());
}

TEST_F(QueryPipelineTest, RalmRetrievesFromEveryRagServiceThenTheGeneratorAnswersWithCitations) {
  Configure(config::Aggregation::kRalm,
            {Expert("docs", config::ExpertKind::kRag), Expert("code", config::ExpertKind::kRag),
             Expert("lm", config::ExpertKind::kMamba)});
  config_.ralm.k = 2;
  Submit();  // no trained gate: the fallback picks the generator, so every rag service retrieves
  ASSERT_EQ(dispatcher_.sent.size(), 2u);
  EXPECT_EQ(dispatcher_.sent[0].service, "docs");
  EXPECT_EQ(dispatcher_.sent[1].service, "code");
  EXPECT_EQ(dispatcher_.sent[0].request.top_k_passages, 2);
  dispatcher_.AnswerPassages(0, {{"alpha", 0.9f}, {"gamma", 0.1f}});
  dispatcher_.AnswerPassages(1, {{"beta", 0.5f}});
  ASSERT_EQ(dispatcher_.sent.size(), 3u);
  const FakeDispatcher::Sent& generation = dispatcher_.sent[2];
  EXPECT_EQ(generation.service, "lm");
  EXPECT_NE(generation.request.prompt.find("alpha"), std::string::npos) << generation.request.prompt;
  EXPECT_NE(generation.request.prompt.find("beta"), std::string::npos);
  EXPECT_EQ(generation.request.prompt.find("gamma"), std::string::npos);  // below the best k
  EXPECT_NE(generation.request.prompt.find("what is thalamus?"), std::string::npos);
  dispatcher_.AnswerText(2, "answer [1]");
  ASSERT_TRUE(result_.has_value());
  EXPECT_EQ(result_->answer, "answer [1]");
  ASSERT_EQ(result_->citations.size(), 2u);
  EXPECT_EQ(result_->citations[0]->text, "alpha");
  EXPECT_EQ(Trace().plan, "ralm");
  EXPECT_NE(Trace().plan_reason.find("every rag service"), std::string::npos) << Trace().plan_reason;
}

TEST_F(QueryPipelineTest, RalmWithoutAGeneratorFallsBackToDirect) {
  Configure(config::Aggregation::kRalm, {Expert("docs", config::ExpertKind::kRag)});
  Submit();
  ASSERT_EQ(dispatcher_.sent.size(), 1u);
  dispatcher_.AnswerPassages(0, {{"alpha", 0.9f}});
  ASSERT_TRUE(result_.has_value());
  EXPECT_EQ(Trace().plan, "direct");
  EXPECT_NE(Trace().plan_reason.find("no generator"), std::string::npos) << Trace().plan_reason;
  EXPECT_EQ(result_->citations.size(), 1u);
}

TEST_F(QueryPipelineTest, RalmWithoutARagServiceFallsBackToDirect) {
  Configure(config::Aggregation::kRalm, {Expert("lm", config::ExpertKind::kTransformer)});
  Submit();
  ASSERT_EQ(dispatcher_.sent.size(), 1u);
  EXPECT_EQ(dispatcher_.sent[0].service, "lm");
  dispatcher_.AnswerText(0, "plain");
  ASSERT_TRUE(result_.has_value());
  EXPECT_EQ(Trace().plan, "direct");
  EXPECT_NE(Trace().plan_reason.find("no rag service"), std::string::npos) << Trace().plan_reason;
}

TEST_F(QueryPipelineTest, RalmTokenBudgetDropsTheLowestRankedPassages) {
  config::ExpertConfig lm = Expert("lm", config::ExpertKind::kMamba);
  lm.model = "/nonexistent";  // counts chars/4
  Configure(config::Aggregation::kRalm, {Expert("docs", config::ExpertKind::kRag), lm});
  config_.ralm.k = 3;
  config_.ralm.prompt_template = "{context}{question}";
  config_.ralm.max_prompt_tokens = 30;  // the question and the best passage fit, not all three
  Submit({}, "q");
  dispatcher_.AnswerPassages(
      0, {{std::string(40, 'a'), 0.9f}, {std::string(40, 'b'), 0.8f}, {std::string(40, 'c'), 0.7f}});
  ASSERT_EQ(dispatcher_.sent.size(), 2u);
  const std::string& prompt = dispatcher_.sent[1].request.prompt;
  EXPECT_NE(prompt.find(std::string(40, 'a')), std::string::npos) << prompt;
  EXPECT_EQ(prompt.find(std::string(40, 'c')), std::string::npos) << prompt;
  dispatcher_.AnswerText(1, "ok");
  ASSERT_TRUE(result_.has_value());
  EXPECT_LT(result_->citations.size(), 3u);
  EXPECT_NE(Trace().plan_reason.find("dropped for the budget of 30 tokens"), std::string::npos) << Trace().plan_reason;
}

TEST_F(QueryPipelineTest, AStreamedSingleExpertIsPassedThroughAndNotRepeated) {
  Configure(config::Aggregation::kTop1, {Expert("a", config::ExpertKind::kEcho)});
  wire::QueryT query;
  query.prompt = "stream me";
  query.stream = true;
  QueryCallbacks callbacks;
  callbacks.on_partial = [this](std::string_view text) { partials_.emplace_back(text); };
  callbacks.on_result = [this](wire::QueryResultT result) { result_ = std::move(result); };
  pipeline_->SubmitInLoop(std::move(query), std::move(callbacks));
  ASSERT_EQ(dispatcher_.sent.size(), 1u);
  EXPECT_TRUE(dispatcher_.sent[0].request.stream);
  wire::PartialT partial;
  partial.text = "str";
  dispatcher_.sent[0].callbacks.on_partial(partial);
  dispatcher_.AnswerText(0, "stream me");
  ASSERT_TRUE(result_.has_value());
  EXPECT_EQ(partials_, std::vector<std::string>{"str"});
}

TEST_F(QueryPipelineTest, ReadyNeedsALiveWorkerForEveryConfiguredService) {
  Configure(config::Aggregation::kTop1,
            {Expert("a", config::ExpertKind::kEcho), Expert("b", config::ExpertKind::kEcho)});
  EXPECT_TRUE(pipeline_->Ready());
  dispatcher_.services[1].live_workers = 0;
  EXPECT_FALSE(pipeline_->Ready());
}

// A drain (router SIGTERM) lets the query in flight finish and refuses new ones.
TEST_F(QueryPipelineTest, ADrainFinishesWhatIsInFlightAndRefusesNewQueries) {
  Configure(config::Aggregation::kTop1, {Expert("a", config::ExpertKind::kEcho)});
  Submit({"a"});
  EXPECT_EQ(pipeline_->in_flight(), 1);
  pipeline_->BeginDrain();
  EXPECT_FALSE(pipeline_->Ready());
  dispatcher_.AnswerText(0, "finished");
  ASSERT_TRUE(result_.has_value());
  EXPECT_EQ(result_->status, wire::StatusCode::OK);
  EXPECT_EQ(pipeline_->in_flight(), 0);
  result_.reset();
  Submit({"a"});
  ASSERT_TRUE(result_.has_value());
  EXPECT_EQ(result_->status, wire::StatusCode::UNAVAILABLE);
  EXPECT_GT(result_->retry_after_ms, 0u);
  EXPECT_EQ(dispatcher_.sent.size(), 1u);
  EXPECT_EQ(pipeline_->in_flight(), 0);
}

}  // namespace
}  // namespace thalamus::router

#include "experts/rag_expert.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "retrieval/domain_config.h"
#include "retrieval/retrieval.h"

namespace thalamus::experts {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxTopK = 100;
constexpr size_t kExcerptChars = 400;
constexpr auto kRefreshInterval = std::chrono::seconds(2);

std::string QueryText(const wire::ExpertRequestT& request) {
  for (auto it = request.messages.rbegin(); it != request.messages.rend(); ++it) {
    if ((*it)->role == "user") return (*it)->content;
  }
  return request.prompt;
}

// Cuts at a UTF-8 boundary and flattens line breaks for a one-paragraph excerpt.
std::string Excerpt(const std::string& text) {
  size_t end = std::min(text.size(), kExcerptChars);
  while (end < text.size() && end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  std::string excerpt = text.substr(0, end);
  std::replace(excerpt.begin(), excerpt.end(), '\n', ' ');
  return end < text.size() ? excerpt + " ..." : excerpt;
}

std::string Answer(const std::string& domain, const std::string& query,
                   const std::vector<retrieval::Passage>& passages) {
  if (passages.empty()) return "No passages found in domain '" + domain + "' (its index is empty).";
  std::string out = std::to_string(passages.size()) + " passage" + (passages.size() == 1 ? "" : "s") + " from '" +
                    domain + "' for \"" + query + "\":\n";
  char score[32];
  for (size_t i = 0; i < passages.size(); ++i) {
    const retrieval::Passage& p = passages[i];
    std::snprintf(score, sizeof score, "%.3f", p.score);
    out += "\n[" + std::to_string(i + 1) + "] " + p.source + ":" + std::to_string(p.start) + "-" +
           std::to_string(p.end) + " (score " + score + ")\n" + Excerpt(p.text) + "\n";
  }
  return out;
}

std::unique_ptr<wire::PassageT> ToWire(const retrieval::Passage& p) {
  auto passage = std::make_unique<wire::PassageT>();
  passage->text = p.text;
  passage->source = p.source;
  passage->domain = p.domain;
  passage->score = p.score;
  passage->start = static_cast<uint32_t>(std::min<uint64_t>(p.start, UINT32_MAX));
  passage->end = static_cast<uint32_t>(std::min<uint64_t>(p.end, UINT32_MAX));
  passage->chunk_id = p.chunk_id;
  return passage;
}

// Brings the index up to date with the configured sources before serving:
// the first start builds it; later ones re-read only files whose content
// changed (Ingest skips the rest by hash) and drop files gone from the source
// directories, so a domain built from a repository follows `git pull`.
void SyncWithSources(const config::ExpertConfig& c, retrieval::DomainSetup& setup,
                     const retrieval::Embedder& embedder) {
  const std::string prefix = "rag expert '" + c.name + "': ";
  for (const std::string& missing : setup.missing)
    std::fprintf(stderr, "%swarning: source %s does not exist\n", prefix.c_str(), missing.c_str());
  const bool exists = std::filesystem::exists(std::filesystem::path(setup.index_dir) / "manifest.json");
  if (setup.sources.empty()) {
    if (!exists) {
      std::fprintf(stderr, "%sindex %s is empty and no sources are configured; fill it with `thalamus ingest`\n",
                   prefix.c_str(), setup.index_dir.c_str());
    }
    return;
  }
  std::fprintf(stderr, "%s%s index %s from %zu source(s)\n", prefix.c_str(), exists ? "syncing" : "building",
               setup.index_dir.c_str(), setup.sources.size());
  setup.ingest.prune = true;
  setup.ingest.progress = [prefix, last = Clock::now()](const retrieval::IngestProgress& p) mutable {
    if (!p.finished && Clock::now() - last < std::chrono::seconds(5)) return;
    last = Clock::now();
    std::fprintf(stderr, "%sfiles %zu/%zu, %zu chunks, %.1fs\n", prefix.c_str(), p.files_done, p.files_total,
                 p.chunks_embedded, p.seconds);
  };
  const retrieval::IngestReport report = retrieval::Ingest(setup.index_dir, embedder, setup.sources, setup.ingest);
  for (const std::string& problem : report.problems) std::fprintf(stderr, "%s%s\n", prefix.c_str(), problem.c_str());
  std::fprintf(stderr, "%sfiles: %zu added, %zu updated, %zu removed, %zu unchanged; %zu chunks\n", prefix.c_str(),
               report.files_added, report.files_updated, report.files_removed, report.files_unchanged,
               report.total_chunks);
}

class RagExpert : public Expert {
 public:
  explicit RagExpert(const config::ExpertConfig& c) : name_(c.name), top_k_(c.top_k > 0 ? c.top_k : 4) {
    retrieval::DomainSetup setup = retrieval::SetupFromConfig(c);
    std::shared_ptr<const retrieval::Embedder> embedder = retrieval::MakeEmbedder(setup.embedder, "", c.threads);
    SyncWithSources(c, setup, *embedder);
    retriever_ = std::make_unique<retrieval::Retriever>(setup.index_dir, embedder, setup.search);
    domain_ = setup.ingest.domain;
    const retrieval::DomainInfo info = retriever_->info();
    model_ = "rag/" + domain_ + " (" + embedder->id() + ", " +
             retrieval::IndexTypeName(info.generation ? info.index.type : setup.ingest.index.type) + ")";
    std::fprintf(stderr, "rag expert '%s': domain '%s', %zu chunks\n", name_.c_str(), domain_.c_str(),
                 retriever_->size());
  }

  std::string Model() const override { return model_; }

  wire::ExpertReplyT Serve(Job& job) override {
    wire::ExpertReplyT reply;
    const wire::ExpertRequestT& request = job.request();
    const std::string query = QueryText(request);
    if (query.find_first_not_of(" \t\r\n") == std::string::npos) {
      return messages::ErrorReply(wire::StatusCode::BAD_REQUEST, "rag expert '" + name_ + "': empty query");
    }
    const size_t k = std::min<size_t>(request.top_k_passages > 0 ? request.top_k_passages : top_k_, kMaxTopK);
    try {
      MaybeRefresh();
      const std::vector<retrieval::Passage> passages = retriever_->Search(query, k);
      for (const retrieval::Passage& p : passages) reply.passages.push_back(ToWire(p));
      reply.text = Answer(domain_, query, passages);
      reply.confidence = passages.empty() ? 0.0f : std::clamp(passages.front().score, 0.0f, 1.0f);
      reply.finish_reason = "stop";
      if (request.stream) job.EmitText(reply.text);
    } catch (const std::exception& e) {
      return messages::ErrorReply(wire::StatusCode::EXPERT_FAILED, "rag expert '" + name_ + "': " + e.what());
    }
    return reply;
  }

 private:
  // Picks up a generation committed by `thalamus ingest`; one thread checks.
  void MaybeRefresh() {
    const int64_t now = Clock::now().time_since_epoch().count();
    int64_t due = next_refresh_.load();
    if (now < due || !next_refresh_.compare_exchange_strong(due, now + Clock::duration(kRefreshInterval).count()))
      return;
    try {
      if (retriever_->Refresh()) {
        std::fprintf(stderr, "rag expert '%s': reloaded index, %zu chunks\n", name_.c_str(), retriever_->size());
      }
    } catch (const std::exception& e) {
      // Keep serving the generation we have; say why the new one was refused.
      std::fprintf(stderr, "rag expert '%s': cannot reload index: %s\n", name_.c_str(), e.what());
    }
  }

  std::string name_;
  std::string domain_;
  std::string model_;
  size_t top_k_;
  std::unique_ptr<retrieval::Retriever> retriever_;
  std::atomic<int64_t> next_refresh_{0};
};

}  // namespace

std::unique_ptr<Expert> MakeRagExpert(const config::ExpertConfig& expert_config) {
  return std::make_unique<RagExpert>(expert_config);
}

}  // namespace thalamus::experts

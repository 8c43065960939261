// `thalamus eval ralm`: question answering through a running router's ralm
// plan at several k (passages given to the generator), as in the MambaRALM
// study: accuracy (an answer alias appears in the output), exact match, F1,
// and retrieval recall@k (an alias appears in the passages the generator got).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/eval_http.h"
#include "cli/eval_metrics.h"
#include "cli/parse_options.h"
#include "config/config.h"

namespace thalamus::cli {
namespace {

namespace po = boost::program_options;
using nlohmann::json;

struct Question {
  std::string id;
  std::string text;
  std::vector<std::string> answers;
};

// {"question", "answers": [...]} or "answer": "..." or TriviaQA's
// "answer": {"value", "aliases": [...]}; "id" is optional.
std::vector<Question> ReadQuestions(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read the questions file");
  std::vector<Question> questions;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    json record = json::parse(line, nullptr, false);
    if (record.is_discarded() || !record.is_object()) throw std::runtime_error(where + "not a JSON object");
    Question q;
    q.id = record.contains("id") ? (record["id"].is_string() ? record["id"].get<std::string>() : record["id"].dump())
                                 : std::to_string(questions.size() + 1);
    if (!record.contains("question") || !record["question"].is_string())
      throw std::runtime_error(where + "\"question\" must be a string");
    q.text = record["question"];
    const json answers = record.contains("answers") ? record["answers"] : record.value("answer", json());
    try {
      if (answers.is_string()) {
        q.answers.push_back(answers);
      } else if (answers.is_array()) {
        q.answers = answers.get<std::vector<std::string>>();
      } else if (answers.is_object()) {
        if (answers.contains("value")) q.answers.push_back(answers["value"].get<std::string>());
        for (const auto& alias : answers.value("aliases", json::array())) q.answers.push_back(alias.get<std::string>());
      }
    } catch (const json::exception&) {
      q.answers.clear();
    }
    if (q.answers.empty()) throw std::runtime_error(where + "needs \"answers\" (strings) or \"answer\"");
    questions.push_back(std::move(q));
  }
  return questions;
}

std::vector<int> ParseKs(const std::string& list) {
  std::vector<int> ks;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    size_t used = 0;
    int k = 0;
    try {
      k = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || k < 1 || k > 1000)
      throw po::error("--k must be a comma-separated list of integers in [1, 1000]");
    ks.push_back(k);
  }
  if (ks.empty()) throw po::error("--k is empty");
  return ks;
}

struct Totals {
  int n = 0, errors = 0;
  double accuracy = 0, exact = 0, f1 = 0, recall = 0, latency_ms = 0;
};

json AskOne(const HttpEndpoint& router, const Question& q, int k, const json& base, std::chrono::milliseconds timeout,
            Totals& totals) {
  json request = base;
  request["prompt"] = q.text;
  request["ralm_k"] = k;
  json record = {{"k", k}, {"id", q.id}, {"question", q.text}, {"answers", q.answers}};
  const auto start = std::chrono::steady_clock::now();
  HttpAnswer answer;
  try {
    answer = PostJson(router, "/v1/query", request.dump(), timeout);
  } catch (const std::exception& e) {
    answer.body = json({{"error", {{"message", e.what()}}}}).dump();
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  json body = json::parse(answer.body, nullptr, false);
  record["status"] = answer.status;
  record["latency_ms"] = ms;
  ++totals.n;
  if (answer.status != 200 || body.is_discarded() || !body.contains("answer")) {
    ++totals.errors;
    record["error"] = body.is_discarded() ? answer.body : body.value("error", json()).dump();
    return record;
  }
  const std::string prediction = body["answer"];
  std::string passages;
  int passage_count = 0;
  for (const json& passage : body.value("citations", json::array()))
    passages += passage.value("text", "") + "\n", ++passage_count;
  const bool correct = AliasMatch(prediction, q.answers), exact = ExactMatch(prediction, q.answers);
  const double f1 = TokenF1(prediction, q.answers);
  const bool hit = AliasMatch(passages, q.answers);
  totals.accuracy += correct, totals.exact += exact, totals.f1 += f1, totals.recall += hit, totals.latency_ms += ms;
  record.update({{"prediction", prediction},
                 {"correct", correct},
                 {"exact_match", exact},
                 {"f1", f1},
                 {"retrieval_hit", hit},
                 {"passages", passage_count}});
  if (body.contains("trace")) record["plan"] = body["trace"].value("plan", "");
  return record;
}

}  // namespace

int RunEval(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "ralm") != 0) {
    std::fprintf(stderr,
                 "usage: thalamus eval ralm --router http://HOST:PORT --data qa.jsonl --k 1,2,4 --out results.jsonl\n");
    return argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) ? 0 : 2;
  }
  --argc, ++argv;
  int max_tokens = 32, timeout_ms = 120000, limit = 0;
  double temperature = 0;
  po::options_description options("thalamus eval ralm: question answering through a router's ralm plan, per k");
  options.add_options()("help,h", "show this help")(
      "router", po::value<std::string>(), "the router, http://HOST:PORT (default: http.host/port of --config)")(
      "config", po::value<std::string>(), "the router's config, for its address when --router is not given")(
      "data", po::value<std::string>()->required(), "questions, JSONL {\"question\", \"answers\": [...]}")(
      "k", po::value<std::string>()->default_value("1,2,4"), "passages per question, comma-separated")(
      "out", po::value<std::string>()->required(), "per-question results, JSONL")(
      "max-tokens", po::value(&max_tokens)->default_value(max_tokens), "answer length limit")(
      "temperature", po::value(&temperature)->default_value(temperature), "sampling temperature (0: greedy)")(
      "timeout-ms", po::value(&timeout_ms)->default_value(timeout_ms), "per question")(
      "limit", po::value(&limit)->default_value(limit), "only the first N questions (0: all)");
  po::variables_map vars;
  std::vector<int> ks;
  HttpEndpoint router;
  if (auto exit_code = ParseOptions(argc, argv, "thalamus eval ralm", options, vars, [&] {
        ks = ParseKs(vars["k"].as<std::string>());
        if (max_tokens < 1 || timeout_ms < 1 || limit < 0 || temperature < 0)
          throw po::error("numeric options out of range");
        if (vars.count("router")) {
          router = ParseHttpUrl(vars["router"].as<std::string>());
        } else {
          const config::Config cfg =
              vars.count("config") ? config::LoadFile(vars["config"].as<std::string>()) : config::LoadDefault();
          router = {cfg.http.host == "0.0.0.0" ? "127.0.0.1" : cfg.http.host, std::to_string(cfg.http.port), ""};
        }
      })) {
    return *exit_code;
  }
  try {
    std::vector<Question> questions = ReadQuestions(vars["data"].as<std::string>());
    if (limit > 0 && questions.size() > static_cast<size_t>(limit)) questions.resize(static_cast<size_t>(limit));
    const std::string out_path = vars["out"].as<std::string>();
    std::ofstream out(out_path);
    if (!out) throw std::runtime_error(out_path + ": cannot write");
    const json base = {{"max_tokens", max_tokens}, {"temperature", temperature}, {"with_trace", true}};
    std::printf("%5s %6s %9s %7s %7s %9s %7s %11s\n", "k", "n", "accuracy", "EM", "F1", "recall@k", "errors",
                "mean ms");
    for (int k : ks) {
      Totals totals;
      for (const Question& q : questions)
        out << AskOne(router, q, k, base, std::chrono::milliseconds(timeout_ms), totals).dump() << "\n";
      // A question that got an error counts as wrong.
      const double d = totals.n > 0 ? totals.n : 1;
      std::printf("%5d %6d %9.3f %7.3f %7.3f %9.3f %7d %11.1f\n", k, totals.n, totals.accuracy / d, totals.exact / d,
                  totals.f1 / d, totals.recall / d, totals.errors, totals.latency_ms / d);
      std::fflush(stdout);
    }
    out.flush();
    if (!out) throw std::runtime_error(out_path + ": write failed");
    std::printf("per-question results: %s (failed questions count as wrong; their errors are listed there)\n",
                out_path.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "thalamus eval ralm: %s\n", e.what());
    return 1;
  }
}

}  // namespace thalamus::cli

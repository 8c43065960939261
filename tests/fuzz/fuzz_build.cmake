# The fuzz build (THALAMUS_FUZZ=ON, included by the top-level CMakeLists.txt):
# messages/ and config/ as they are, instrumented, plus the sources of
# frontends/, models/, router/ and security/ that parse bytes or serve them,
# compiled into their targets so that nothing here needs LibTorch. Every target runs as a CTest test (label fuzz)
# for THALAMUS_FUZZ_SECONDS over its seed corpus in tests/fuzz/corpus/.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "THALAMUS_FUZZ needs clang (-DCMAKE_CXX_COMPILER=clang++)")
endif()
set(THALAMUS_FUZZ_SECONDS 60 CACHE STRING "Seconds each fuzz target runs under CTest")
set(_sanitize -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1)
add_compile_options(${_sanitize} -fsanitize=fuzzer-no-link)
add_link_options(-fsanitize=address,undefined)

find_package(FlatBuffers REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(ICU REQUIRED COMPONENTS uc)
find_package(cppzmq REQUIRED)
find_package(Boost REQUIRED COMPONENTS system)
find_package(prometheus-cpp REQUIRED)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
add_subdirectory(messages)
add_subdirectory(config)
enable_testing()

set(_fuzz ${PROJECT_SOURCE_DIR}/tests/fuzz)
function(thalamus_fuzz_target name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;ARGS" ${ARGN})
  add_executable(${name} ${_fuzz}/${name}.cpp ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR} ${THALAMUS_GENERATED_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} -fsanitize=fuzzer)
  # A copy of the seed corpus collects what this run finds; the repository's stays as it is.
  set(work ${CMAKE_CURRENT_BINARY_DIR}/corpus/${name})
  add_test(NAME ${name}
    COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
            $<TARGET_FILE:${name}> -max_total_time=${THALAMUS_FUZZ_SECONDS} -timeout=10 -rss_limit_mb=2048
            -print_final_stats=1 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/crash-${name}- ${ARG_ARGS}
            ${work} ${_fuzz}/corpus/${name})
  set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 0)
  file(MAKE_DIRECTORY ${work})
endfunction()

thalamus_fuzz_target(fuzz_envelope LIBS thalamus_messages)
thalamus_fuzz_target(fuzz_openai_request
  SOURCES ${PROJECT_SOURCE_DIR}/frontends/openai_request.cpp
  LIBS thalamus_messages nlohmann_json::nlohmann_json)
thalamus_fuzz_target(fuzz_config LIBS thalamus_config)
thalamus_fuzz_target(fuzz_tokenizer
  SOURCES ${PROJECT_SOURCE_DIR}/models/tokenizer.cpp ${PROJECT_SOURCE_DIR}/models/byte_level.cpp
          ${PROJECT_SOURCE_DIR}/models/text.cpp
  LIBS nlohmann_json::nlohmann_json ICU::uc
  ARGS -dict=${_fuzz}/tokenizer.dict)
target_compile_definitions(fuzz_tokenizer PRIVATE
  THALAMUS_TOKENIZER_JSON="${PROJECT_SOURCE_DIR}/tests/data/tokenizers/gpt-neox-20b/tokenizer.json")
thalamus_fuzz_target(fuzz_keys
  SOURCES ${PROJECT_SOURCE_DIR}/security/curve_keys.cpp ${PROJECT_SOURCE_DIR}/security/api_keys.cpp
  LIBS cppzmq PkgConfig::SODIUM)

thalamus_fuzz_target(fuzz_safetensors
  SOURCES ${PROJECT_SOURCE_DIR}/models/safetensors_header.cpp
  LIBS nlohmann_json::nlohmann_json)

# The HTTP front end over loopback, with the tests' scripted QueryService.
thalamus_fuzz_target(fuzz_http
  SOURCES ${PROJECT_SOURCE_DIR}/frontends/http_server.cpp ${PROJECT_SOURCE_DIR}/frontends/http_session.cpp
          ${PROJECT_SOURCE_DIR}/frontends/http_head.cpp ${PROJECT_SOURCE_DIR}/frontends/openai_request.cpp
          ${PROJECT_SOURCE_DIR}/frontends/openai_response.cpp ${PROJECT_SOURCE_DIR}/router/metrics.cpp ${PROJECT_SOURCE_DIR}/router/process_metrics.cpp
          ${PROJECT_SOURCE_DIR}/router/event_loop.cpp ${PROJECT_SOURCE_DIR}/security/api_keys.cpp
          ${PROJECT_SOURCE_DIR}/security/curve_keys.cpp ${PROJECT_SOURCE_DIR}/tests/frontends/scripted_query_service.cpp
  LIBS thalamus_messages thalamus_config nlohmann_json::nlohmann_json Boost::system prometheus-cpp::core cppzmq
       PkgConfig::SODIUM Threads::Threads
  # The server keeps state across inputs (metrics, buckets), which libFuzzer's
  # per-input leak check mistakes for leaks and which cut its rate tenfold;
  # LeakSanitizer still checks the whole process when it exits.
  ARGS -dict=${_fuzz}/http.dict -detect_leaks=0)

# Decode + dispatch on the front end, the broker's backend and a worker, wired as in the service.
thalamus_fuzz_target(fuzz_dispatch
  SOURCES ${PROJECT_SOURCE_DIR}/frontends/zmq_frontend.cpp ${PROJECT_SOURCE_DIR}/router/broker.cpp
          ${PROJECT_SOURCE_DIR}/router/event_loop.cpp ${PROJECT_SOURCE_DIR}/router/metrics.cpp ${PROJECT_SOURCE_DIR}/router/process_metrics.cpp
          ${PROJECT_SOURCE_DIR}/experts/worker.cpp ${PROJECT_SOURCE_DIR}/experts/echo_expert.cpp
          ${PROJECT_SOURCE_DIR}/security/curve_keys.cpp ${PROJECT_SOURCE_DIR}/tests/frontends/scripted_query_service.cpp
  LIBS thalamus_messages thalamus_config nlohmann_json::nlohmann_json Boost::system prometheus-cpp::core cppzmq
       PkgConfig::SODIUM Threads::Threads)

# Writes the seed corpus of fuzz_envelope (run by hand after a schema change).
add_executable(make_envelope_seeds ${_fuzz}/make_envelope_seeds.cpp)
target_link_libraries(make_envelope_seeds PRIVATE thalamus_messages)

// The C API of gbench.h over Google Benchmark. The only C++ in qkbench; it builds against
// 1.7.1 (Debian 12) and 1.8.x (the GPU hosts), whose Run and State differ in how a skip is
// spelled, so those few members are reached through overloads that pick what exists.
#include "gbench.h"
#include <benchmark/benchmark.h>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace {
benchmark::State &S(qk_gb_state *st) {
    return *reinterpret_cast<benchmark::State *>(st);
}
benchmark::internal::Benchmark *B(qk_gb_bench *b) {
    return reinterpret_cast<benchmark::internal::Benchmark *>(b);
}

// 1.8 has SkipWithMessage (a skip, not an error); 1.7 only SkipWithError.
template <class St> auto skip_impl(St &s, const char *m, int) -> decltype(s.SkipWithMessage(m)) {
    return s.SkipWithMessage(m);
}
template <class St> void skip_impl(St &s, const char *m, long) {
    s.SkipWithError(m);
}

// 1.7: Run::error_occurred + error_message; 1.8: Run::skipped + skip_message.
template <class R> auto skipped_impl(const R &r, int) -> decltype(bool(r.skipped)) {
    return bool(r.skipped);
}
template <class R> auto skipped_impl(const R &r, long) -> decltype(bool(r.error_occurred)) {
    return r.error_occurred;
}
template <class R> auto message_impl(const R &r, int) -> decltype(std::string(r.skip_message)) {
    return r.skip_message;
}
template <class R> auto message_impl(const R &r, long) -> decltype(std::string(r.error_message)) {
    return r.error_message;
}

class Collector : public benchmark::BenchmarkReporter {
  public:
    Collector(qk_gb_result_fn fn, void *ctx) : fn_(fn), ctx_(ctx) {}
    bool ReportContext(const Context &) override { return true; }
    void ReportRuns(const std::vector<Run> &runs) override {
        for (const Run &r : runs) {
            std::string full = r.run_name.str();
            std::string msg = message_impl(r, 0);
            qk_gb_result out;
            out.name = r.run_name.function_name.c_str();
            out.full_name = full.c_str();
            out.aggregate = r.run_type == Run::RT_Aggregate ? r.aggregate_name.c_str() : "";
            out.repetition = static_cast<int>(r.repetition_index);
            out.iterations = static_cast<int64_t>(r.iterations);
            out.seconds =
                r.iterations ? r.real_accumulated_time / static_cast<double>(r.iterations) : 0.0;
            out.skipped = skipped_impl(r, 0);
            out.message = msg.c_str();
            fn_(&out, ctx_);
        }
    }

  private:
    qk_gb_result_fn fn_;
    void *ctx_;
};

std::string json_text; // the JSON file's text, once CapturedJson has finished

// The length of the well-formed UTF-8 sequence at in[i] (a lead byte >= 0x80), or 0.
size_t utf8_length(const std::string &in, size_t i) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    size_t n = c >= 0xc2 && c <= 0xdf   ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    if (!n || i + n > in.size()) return 0;
    unsigned char c1 = static_cast<unsigned char>(in[i + 1]);
    if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) || (c == 0xf0 && c1 < 0x90) ||
        (c == 0xf4 && c1 > 0x8f))
        return 0; // overlong, a surrogate, beyond U+10FFFF
    for (size_t k = 1; k < n; k++)
        if ((static_cast<unsigned char>(in[i + k]) & 0xc0) != 0x80) return 0;
    return n;
}

// Inside strings, every control byte (and 0x7f, and a byte that is not UTF-8) becomes \u00XX.
// Google Benchmark writes a non-finite counter as NaN or Infinity, which JSON does not have:
// outside strings, each becomes null.
std::string finite_only(const std::string &in) {
    static const char *const words[] = {"-Infinity", "Infinity", "-NaN", "NaN"};
    std::string out;
    out.reserve(in.size());
    bool in_string = false;
    for (size_t i = 0; i < in.size(); i++) {
        char ch = in[i];
        if (in_string) {
            unsigned char u = static_cast<unsigned char>(ch);
            size_t n = u >= 0x80 ? utf8_length(in, i) : 1;
            if (u < 0x20 || u == 0x7f || !n) {
                // Google Benchmark escapes only " \\ \b \f \n \r \t: a control byte (or a
                // byte that is not UTF-8) of a path or a --benchmark_context value would make
                // the file invalid JSON
                char esc[8];
                snprintf(esc, sizeof esc, "\\u%04x", u);
                out += esc;
            } else {
                out.append(in, i, n);
                i += n - 1;
                if (ch == '\\' && i + 1 < in.size())
                    out += in[++i];
                else if (ch == '"')
                    in_string = false;
            }
            continue;
        }
        if (ch == '"') in_string = true;
        bool replaced = false;
        for (const char *w : words) {
            size_t n = std::char_traits<char>::length(w);
            if (!in.compare(i, n, w)) {
                out += "null";
                i += n - 1;
                replaced = true;
                break;
            }
        }
        if (!replaced) out += ch;
    }
    return out;
}

// The JSON file's reporter: Google Benchmark's own, writing to memory so that bench writes the
// file itself (checking every write) after adding its samples.
class CapturedJson : public benchmark::BenchmarkReporter {
  public:
    bool ReportContext(const Context &c) override {
        json_.SetOutputStream(&text_);
        json_.SetErrorStream(&GetErrorStream());
        return json_.ReportContext(c);
    }
    void ReportRuns(const std::vector<Run> &runs) override { json_.ReportRuns(runs); }
    void Finalize() override {
        json_.Finalize();
        json_text = finite_only(text_.str());
    }

  private:
    benchmark::JSONReporter json_;
    std::ostringstream text_;
};

bool capture_json;
std::string run_errors;
} // namespace

extern "C" {

int qk_gb_init(int argc, char **argv) {
    benchmark::Initialize(&argc, argv);
    return argc;
}

void qk_gb_add_context(const char *key, const char *value) {
    benchmark::AddCustomContext(key, value);
}

qk_gb_bench *qk_gb_register(const char *name, qk_gb_fn fn, void *ctx) {
    benchmark::internal::Benchmark *b = benchmark::RegisterBenchmark(
        name, [fn, ctx](benchmark::State &s) { fn(reinterpret_cast<qk_gb_state *>(&s), ctx); });
    return reinterpret_cast<qk_gb_bench *>(b);
}
void qk_gb_use_manual_time(qk_gb_bench *b) {
    B(b)->UseManualTime();
}
void qk_gb_set_iterations(qk_gb_bench *b, int64_t n) {
    B(b)->Iterations(n);
}
void qk_gb_set_min_time(qk_gb_bench *b, double seconds) {
    B(b)->MinTime(seconds);
}
void qk_gb_set_repetitions(qk_gb_bench *b, int n) {
    B(b)->Repetitions(n);
}
void qk_gb_set_unit_us(qk_gb_bench *b) {
    B(b)->Unit(benchmark::kMicrosecond);
}

int qk_gb_keep_running(qk_gb_state *st) {
    return S(st).KeepRunning();
}
void qk_gb_pause(qk_gb_state *st) {
    S(st).PauseTiming();
}
void qk_gb_resume(qk_gb_state *st) {
    S(st).ResumeTiming();
}
void qk_gb_set_iteration_time(qk_gb_state *st, double seconds) {
    S(st).SetIterationTime(seconds);
}
int64_t qk_gb_iterations(const qk_gb_state *st) {
    return static_cast<int64_t>(reinterpret_cast<const benchmark::State *>(st)->iterations());
}
void qk_gb_set_bytes_processed(qk_gb_state *st, int64_t bytes) {
    S(st).SetBytesProcessed(bytes);
}
void qk_gb_set_items_processed(qk_gb_state *st, int64_t items) {
    S(st).SetItemsProcessed(items);
}
void qk_gb_counter(qk_gb_state *st, const char *name, double value, qk_gb_counter_kind kind) {
    S(st).counters[name] = benchmark::Counter(
        value, kind == QK_GB_RATE ? benchmark::Counter::kIsRate : benchmark::Counter::kDefaults);
}
void qk_gb_skip(qk_gb_state *st, const char *msg) {
    skip_impl(S(st), msg, 0);
}
void qk_gb_fail(qk_gb_state *st, const char *msg) {
    S(st).SkipWithError(msg);
}
void qk_gb_capture_json(void) {
    capture_json = true;
}
const char *qk_gb_filter(void) {
    static std::string filter;
    filter = benchmark::GetBenchmarkFilter();
    return filter.c_str();
}
const char *qk_gb_json_text(void) {
    return json_text.c_str();
}
void qk_gb_set_filter(const char *filter) {
    benchmark::SetBenchmarkFilter(filter);
}
const char *qk_gb_errors(void) {
    return run_errors.c_str();
}

const char *qk_gb_min_time_flag(double seconds) {
    static char flag[64];
    // 1.8 reads "<seconds>s" (a bare number is deprecated), 1.7 only a bare number
    snprintf(flag, sizeof flag, "--benchmark_min_time=%g%s", seconds,
             QK_GBENCH_VERSION >= 10800 ? "s" : "");
    return flag;
}

size_t qk_gb_run(qk_gb_result_fn on_result, void *ctx) {
    Collector collector(on_result, ctx);
    std::ostringstream errors; // the library's complaints, for bench to say in one line
    collector.SetErrorStream(&errors);
    size_t ran;
    if (capture_json) {
        CapturedJson json;
        ran = benchmark::RunSpecifiedBenchmarks(&collector, &json);
    } else {
        ran = benchmark::RunSpecifiedBenchmarks(&collector);
    }
    run_errors = errors.str();
    return ran;
}
void qk_gb_shutdown(void) {
    benchmark::Shutdown();
}
}

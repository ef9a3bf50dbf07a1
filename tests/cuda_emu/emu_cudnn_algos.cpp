/* The emulated cuDNN's algorithm lists: what cuDNN 9 might offer for an NHWC convolution
 * on a GPU (GEMM-based algorithms for every shape, a non-deterministic one in each
 * backward pass, Winograd for 3x3 stride-1 shapes, FFT never for NHWC), and the rules
 * with which tests shape them (cuda_emu_control.h: no algorithm for a shape, only
 * non-deterministic ones, no bf16 kernel, only transforms, no FMA math, too much
 * workspace), so that every fallback of net/cuda/conv_plan.cu runs. Which algorithms a
 * real GPU offers is what only a GPU shows. */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_emu_control.h"
#include "emu_cudnn.h"

namespace {

enum Applies { ALWAYS, K3_S1, NEVER };
enum Memory { MEM_NONE, MEM_SMALL, MEM_IM2COL, MEM_WINOGRAD };
struct Base {
    int algo;
    bool deterministic, transform;
    Memory memory;
    Applies applies;
};

const Base FWD[] = {
    {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, true, false, MEM_SMALL, ALWAYS},
    {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, true, false, MEM_NONE, ALWAYS},
    {CUDNN_CONVOLUTION_FWD_ALGO_GEMM, true, false, MEM_IM2COL, ALWAYS},
    {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, true, true, MEM_WINOGRAD, K3_S1},
    {CUDNN_CONVOLUTION_FWD_ALGO_FFT, true, true, MEM_NONE, NEVER},
};
const Base BWD_DATA[] = {
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, true, false, MEM_SMALL, ALWAYS},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, false, false, MEM_NONE, ALWAYS},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED, true, true, MEM_WINOGRAD, K3_S1},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, true, true, MEM_NONE, NEVER},
};
const Base BWD_FILTER[] = {
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, true, false, MEM_SMALL, ALWAYS},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, false, false, MEM_NONE, ALWAYS},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, false, false, MEM_SMALL, ALWAYS},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED, true, true, MEM_WINOGRAD, K3_S1},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, true, true, MEM_NONE, NEVER},
};

const Base *base_list(int pass, int *n) {
    if (pass == emu::PASS_FWD) return *n = sizeof FWD / sizeof FWD[0], FWD;
    if (pass == emu::PASS_BWD_DATA) return *n = sizeof BWD_DATA / sizeof BWD_DATA[0], BWD_DATA;
    return *n = sizeof BWD_FILTER / sizeof BWD_FILTER[0], BWD_FILTER;
}

size_t memory_of(Memory m, const emu::Conv &d) {
    size_t e = d.dt == CUDNN_DATA_BFLOAT16 ? 2 : 4;
    switch (m) {
    case MEM_SMALL: return 256 + (size_t)d.k * d.r * d.s * d.c * e;
    case MEM_IM2COL: return (size_t)d.n * d.oh * d.ow * d.c * d.r * d.s * e;
    case MEM_WINOGRAD: return 4 * ((size_t)d.n * (d.oh + 2) * (d.ow + 2) * (d.c + d.k) * e);
    default: return 0;
    }
}

bool applies(const Base &b, const emu::Conv &d) {
    return b.applies == ALWAYS || (b.applies == K3_S1 && d.r == 3 && d.s == 3 && d.stride == 1);
}

/* ---- the tests' rules ---- */

enum Action { NONE, NONDET, TRANSFORM, TENSOR_OP, HUGE };
struct Rule {
    int pass = -1, source = -1, bf16 = -1, in_c = -1, k = -1;
    Action action = NONE;
};
std::mutex rules_mu;
std::vector<Rule> rules;

bool parse_condition(const std::string &c, Rule *r) {
    if (c == "fwd") r->pass = emu::PASS_FWD;
    else if (c == "bwd_data") r->pass = emu::PASS_BWD_DATA;
    else if (c == "bwd_filter") r->pass = emu::PASS_BWD_FILTER;
    else if (c == "heur") r->source = emu::FROM_HEURISTICS;
    else if (c == "find") r->source = emu::FROM_FIND;
    else if (c == "float") r->bf16 = 0;
    else if (c == "bf16") r->bf16 = 1;
    else if (c.rfind("in_c=", 0) == 0) r->in_c = atoi(c.c_str() + 5);
    else if (c.rfind("k=", 0) == 0) r->k = atoi(c.c_str() + 2);
    else return false;
    return true;
}

bool parse_rule(const std::string &text, Rule *r) {
    size_t colon = text.rfind(':');
    std::string conds = colon == std::string::npos ? "" : text.substr(0, colon);
    std::string act = colon == std::string::npos ? text : text.substr(colon + 1);
    static const char *names[] = {"none", "nondet", "transform", "tensor_op", "huge"};
    bool known = false;
    for (int a = 0; a < 5; a++)
        if (act == names[a]) r->action = (Action)a, known = true;
    if (!known) return false;
    size_t at = 0;
    while (at < conds.size()) {
        size_t comma = conds.find(',', at);
        std::string c = conds.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        if (!c.empty() && !parse_condition(c, r)) return false;
        if (comma == std::string::npos) break;
        at = comma + 1;
    }
    return true;
}

int set_rules(const char *text) {
    std::vector<Rule> parsed;
    std::string all = text ? text : "";
    size_t at = 0;
    while (at < all.size()) {
        size_t semi = all.find(';', at);
        std::string one = all.substr(at, semi == std::string::npos ? std::string::npos : semi - at);
        Rule r;
        if (!one.empty()) {
            if (!parse_rule(one, &r)) return -1;
            parsed.push_back(r);
        }
        if (semi == std::string::npos) break;
        at = semi + 1;
    }
    std::lock_guard<std::mutex> lk(rules_mu);
    rules = parsed;
    return 0;
}

std::vector<Rule> current_rules() {
    static std::once_flag from_env;
    std::call_once(from_env, [] {
        const char *env = getenv("E2E_EMU_CUDNN");
        if (env && set_rules(env)) {
            fprintf(stderr, "cuda_emu: E2E_EMU_CUDNN='%s' does not parse (tests/cuda_emu/cuda_emu_control.h)\n", env);
            abort();
        }
    });
    std::lock_guard<std::mutex> lk(rules_mu);
    return rules;
}

bool matches(const Rule &r, int pass, const emu::Conv &d, int source) {
    return (r.pass < 0 || r.pass == pass) && (r.source < 0 || r.source == source) &&
           (r.bf16 < 0 || r.bf16 == (d.dt == CUDNN_DATA_BFLOAT16)) && (r.in_c < 0 || r.in_c == d.c) &&
           (r.k < 0 || (r.k == d.r && r.k == d.s));
}

/* a transform rule makes every transform available for the shape (as on a GPU that has one) */
bool transform_offered(int pass, const emu::Conv &d) {
    for (const Rule &r : current_rules())
        if (r.action == TRANSFORM && (r.pass < 0 || r.pass == pass) && (r.bf16 < 0 || r.bf16 == (d.dt == CUDNN_DATA_BFLOAT16)) &&
            (r.in_c < 0 || r.in_c == d.c) && (r.k < 0 || (r.k == d.r && r.k == d.s)))
            return true;
    return false;
}

void apply(Action a, const Base *b, const emu::Conv &d, std::vector<emu::Algo> &list) {
    for (size_t i = 0; i < list.size(); i++) {
        emu::Algo &x = list[i];
        if (a == NONE || (a == TRANSFORM && !b[i].transform)) x.status = CUDNN_STATUS_NOT_SUPPORTED;
        if (a == TRANSFORM && b[i].transform)
            x.status = CUDNN_STATUS_SUCCESS, x.memory = memory_of(MEM_WINOGRAD, d), x.time = 1.0f + (float)i;
        if (a == NONDET) x.determinism = CUDNN_NON_DETERMINISTIC;
        if (a == TENSOR_OP) x.math = CUDNN_TENSOR_OP_MATH;
        if (a == HUGE) x.memory = (size_t)64 << 30;
    }
}

}  // namespace

namespace emu {

std::vector<Algo> algorithms(int pass, const Conv &d, int source) {
    int n = 0;
    const Base *b = base_list(pass, &n);
    std::vector<Algo> list;
    for (int i = 0; i < n; i++) {
        bool ok = applies(b[i], d);
        list.push_back(Algo{b[i].algo, ok ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_NOT_SUPPORTED, ok ? 1.0f + i : -1.0f,
                            ok ? memory_of(b[i].memory, d) : 0,
                            b[i].deterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC, d.math});
    }
    for (const Rule &r : current_rules())
        if (matches(r, pass, d, source)) apply(r.action, b, d, list);
    std::vector<Algo> sorted;  /* those that run first, in their order, then the others */
    for (const Algo &a : list)
        if (a.status == CUDNN_STATUS_SUCCESS) sorted.push_back(a);
    for (Algo a : list)
        if (a.status != CUDNN_STATUS_SUCCESS) a.time = -1.0f, sorted.push_back(a);
    return sorted;
}

cudnnStatus_t can_run(int pass, const Conv &d, int algo, size_t ws_bytes) {
    int n = 0;
    const Base *b = base_list(pass, &n);
    for (int i = 0; i < n; i++)
        if (b[i].algo == algo) {
            bool offered = b[i].transform && transform_offered(pass, d);
            if (!applies(b[i], d) && !offered) return CUDNN_STATUS_NOT_SUPPORTED;
            size_t need = offered ? memory_of(MEM_WINOGRAD, d) : memory_of(b[i].memory, d);
            return ws_bytes >= need ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
        }
    return CUDNN_STATUS_NOT_SUPPORTED;
}

}  // namespace emu

extern "C" int cuda_emu_cudnn_rules(const char *text) {
    (void)current_rules();  /* the environment's, first, so that these replace them */
    return set_rules(text);
}

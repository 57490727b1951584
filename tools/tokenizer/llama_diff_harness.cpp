// Differential harness for the tokenizer tests (`differential_against_llama_cpp`): tokenizes
// hex-encoded lines from stdin with llama.cpp and prints one JSON line per input.
//   L=<llama.cpp source tree with build/>
//   g++ -O1 -std=c++17 -I$L/include -I$L/ggml/include llama_diff_harness.cpp -L$L/build/bin \
//       -lllama -lggml -lggml-base -Wl,-rpath,$L/build/bin -o harness
//   python3 gen_diff_cases.py 1 400 > cases.hex
//   ./harness ggml-vocab-qwen2.gguf < cases.hex > $DIFF_DIR/qwen2.jsonl   (smollm2.jsonl: the model)
//   LONGCTX_TOK_DIFF_DIR=$DIFF_DIR cargo test -p longctx-engine differential
#include "llama.h"
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

static std::string unhex(const std::string & h) {
    std::string s;
    for (size_t i = 0; i + 1 < h.size(); i += 2) s.push_back((char) std::stoi(h.substr(i, 2), nullptr, 16));
    return s;
}
static std::string hex(const std::string & s) {
    static const char * d = "0123456789abcdef";
    std::string h;
    for (unsigned char c : s) { h.push_back(d[c >> 4]); h.push_back(d[c & 15]); }
    return h;
}
static std::vector<llama_token> tok(const llama_vocab * v, const std::string & s, bool add, bool parse) {
    std::vector<llama_token> t(s.size() + 16);
    int n = llama_tokenize(v, s.data(), (int) s.size(), t.data(), (int) t.size(), add, parse);
    if (n < 0) { t.resize(-n); n = llama_tokenize(v, s.data(), (int) s.size(), t.data(), (int) t.size(), add, parse); }
    t.resize(n);
    return t;
}
static std::string detok(const llama_vocab * v, const std::vector<llama_token> & t, bool special) {
    std::string s(t.size() * 8 + 16, '\0');
    int n = llama_detokenize(v, t.data(), (int) t.size(), &s[0], (int) s.size(), false, special);
    if (n < 0) { s.resize(-n); n = llama_detokenize(v, t.data(), (int) t.size(), &s[0], (int) s.size(), false, special); }
    s.resize(n);
    return s;
}
static void print_ids(const std::vector<llama_token> & t) {
    printf("[");
    for (size_t i = 0; i < t.size(); i++) printf("%s%d", i ? "," : "", t[i]);
    printf("]");
}
int main(int argc, char ** argv) {
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    auto mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model * m = llama_model_load_from_file(argv[1], mp);
    if (!m) return 1;
    const llama_vocab * v = llama_model_get_vocab(m);
    std::vector<llama_token> eog;
    for (int i = 0; i < llama_vocab_n_tokens(v); i++) if (llama_vocab_is_eog(v, i)) eog.push_back(i);
    printf("{\"eog\":"); print_ids(eog);
    printf(",\"bos\":%d,\"eos\":%d,\"add_bos\":%d,\"add_eos\":%d}\n", llama_vocab_bos(v), llama_vocab_eos(v),
           (int) llama_vocab_get_add_bos(v), (int) llama_vocab_get_add_eos(v));
    std::string line;
    while (std::getline(std::cin, line)) {
        std::string s = unhex(line);
        printf("{\"text\":\"%s\",\"ids\":[", line.c_str());
        std::vector<llama_token> tt;
        for (int k = 0; k < 4; k++) {
            auto t = tok(v, s, k & 2, k & 1);
            if (k) printf(",");
            print_ids(t);
            if (k == 3) tt = t;
        }
        printf("],\"dec\":[\"%s\",\"%s\"]}\n", hex(detok(v, tt, false)).c_str(), hex(detok(v, tt, true)).c_str());
    }
    return 0;
}

"""Random tokenizer inputs (hex-encoded lines) for llama_diff_harness.cpp: python3 gen_diff_cases.py SEED COUNT."""
import random, sys
random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<unk>", "<start_of_turn>", "<end_of_turn>",
            "<|begin_of_text|>", "<|eot_id|>", "<bos>", "<eos>", "<pad>", "<reponame>", "<file_sep>", "<|fim_prefix|>",
            "<0x0A>", "<|user|>", "<|assistant|>", "<|end|>", "<turn|>", "<|turn>", "<mask>", "[multimodal]", "<unused5>",
            "<|im_start", "im_end|>", "<", ">", "|"]
pieces = ["Hello", "world", "the", "The", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "'s", "'S", "'ll", "'re",
          "'ve", "'m", "'d", "'t", "'", "\"", "12345678", "3", "33", "1,000", "3.14", "-", "--", "...", "!", "?", ".", ",",
          "🦙", "🚀", "😶‍🌫️", "👍🏽", "✅", "日本語", "中文", "한국어", "нещо", "Ünïcödé", "café", "naïve", "ﬁ", "\u212a", "\u2126", "\u1f7d",
          "e\u0301", "\u0301", "\u200b", "\u00a0", "\u3000", "\u2028", "\u0085", "▁", "▁▁", "Ġ", "Ċ", "ĠĠ", "<0x41>",
          "\ue000", "\U0010fffd", "\U000e0001", "\u0600", "ℳ", "½", "²", "Ⅷ", "٣", "𝔘", "ｆｕｌｌ", "ǅ", "ß", "İ",
          "(", ")", "{", "}", "[", "]", "#", "$", "%", "^", "&", "*", "+", "=", "_", "~", "`", "|", "\\", "/", "<", ">",
          "\x00", "\x01", "\x7f", "\x0b", "\x0c", "ab", "xyz", "DON'T", "I'm", "its", "ok"]
def rand_cp():
    r = random.random()
    if r < 0.5: return chr(random.randint(0x20, 0x7e))
    if r < 0.7: return chr(random.randint(0xa0, 0x3000))
    while True:
        c = random.randint(0x80, 0x10ffff)
        if not (0xd800 <= c <= 0xdfff): return chr(c)
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 300):
    parts = []
    for _ in range(random.randint(0, 12)):
        r = random.random()
        if r < 0.15: parts.append(random.choice(specials))
        elif r < 0.8: parts.append(random.choice(pieces))
        else: parts.append(''.join(rand_cp() for _ in range(random.randint(1, 4))))
    s = ''.join(parts)
    print(s.encode('utf-8').hex())

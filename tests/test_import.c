/* test_import.c - the importers (core/import_hf.c, core/import_llama2c.c, core/import.c)
 * and the checkpoint helpers (core/checkpoint.c). Tiny models from tests/tinymodel.h are
 * written in every format and must import bit for bit (llama2.c v2: equal to the
 * dequantized values): HF F32/F16/BF16, sharded, tied and untied, GQA, custom head_dim,
 * Qwen2 and Llama biases, RoPE variants; llama2.c v0/v1/v2 tied and untied. Broken inputs
 * must fail with messages naming the file and the tensor. The shared real models
 * (stories260K, gutenberg-7m) import and validate when ../shared is present.
 */
#include <unistd.h>

#include "../runtime/fileio.h"
#include "test.h"
#include "tinymodel.h"

static char pbuf[8][1024];
static int pk;

/* "<tmpdir>/<name>" in a rotating static buffer. */
static const char *tp(const char *name) {
    char *b = pbuf[pk++ & 7];
    snprintf(b, sizeof pbuf[0], "%s/%s", sq_test_tmpdir(), name);
    return b;
}

static const char *tp2(const char *dir, const char *name) {
    char *b = pbuf[pk++ & 7];
    snprintf(b, sizeof pbuf[0], "%s/%s/%s", sq_test_tmpdir(), dir, name);
    return b;
}

/* Replaces the first occurrence of `from` in file `path` by `to`. */
static void file_replace(const char *path, const char *from, const char *to) {
    char *d = NULL;
    size_t n = 0;
    if (sq_read_file(path, (size_t)1 << 26, &d, &n) != SQ_OK) abort();
    char *at = strstr(d, from);
    if (!at) {
        printf("  file_replace: '%s' not in %s\n", from, path);
        abort();
    }
    FILE *fp = fopen(path, "wb");
    fwrite(d, 1, (size_t)(at - d), fp);
    fputs(to, fp);
    fputs(at + strlen(from), fp);
    fclose(fp);
    free(d);
}

/* Overwrites the first occurrence of `from` in a binary file with `to` (same length). */
static void bin_replace(const char *path, const char *from, const char *to) {
    char *d = NULL;
    size_t n = 0;
    if (sq_read_file(path, (size_t)1 << 26, &d, &n) != SQ_OK || strlen(from) != strlen(to)) abort();
    size_t k = strlen(from), i = 0;
    while (i + k <= n && memcmp(d + i, from, k) != 0) i++;
    if (i + k > n) abort();
    char *at = d + i;
    memcpy(at, to, strlen(to));
    if (sq_tiny_write_file(path, d, n) != SQ_OK) abort();
    free(d);
}

static void file_write(const char *path, const char *text) {
    if (sq_tiny_write_file(path, text, strlen(text)) != SQ_OK) abort();
}

static void expect_fail(sq_status st, sq_status code, const char *needle) {
    SQ_CHECKF(st == code, "status %d, expected %d: %s", st, code, sq_last_error());
    SQ_CHECKF(strstr(sq_last_error(), needle) != NULL, "message '%s' lacks '%s'", sq_last_error(), needle);
    SQ_CHECKF(strchr(sq_last_error(), '\n') == NULL, "message is not one line");
}

/* Writes spec s as an HF dir `name`, imports it and compares with the source. */
static void hf_roundtrip(const sq_tiny_spec *s, const char *name, int shards) {
    sq_checkpoint a, b;
    char why[256] = "";
    SQ_CHECK_OK(sq_tiny_checkpoint(s, &a));
    const char *dir = tp(name);
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, shards));
    SQ_CHECK_OK(sq_import_hf(dir, &b));
    SQ_CHECKF(sq_tiny_checkpoint_equal(&a, &b, true, why, sizeof why), "%s: %s", name, why);
    SQ_CHECK(b.source_format && strcmp(b.source_format, "hf-safetensors") == 0);
    SQ_CHECK(b.config_json && strstr(b.config_json, "hidden_size"));
    SQ_CHECK(b.n_sources == (shards > 1 ? 4 + shards : 4));
    for (int i = 0; i < b.n_sources; i++) SQ_CHECK(strlen(b.sources[i].sha256) == 64 && b.sources[i].size > 0);
    for (int i = 0; i < b.n_tensors; i++)
        SQ_CHECK(b.tensors[i].owns_data && ((uintptr_t)b.tensors[i].data & 63) == 0);
    SQ_CHECK_OK(sq_checkpoint_validate(&b, name));
    sq_checkpoint_free(&a);
    sq_checkpoint_free(&b);
}

/* ===== Checkpoint API ===== */

SQ_TEST(checkpoint_api) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint c;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
    SQ_CHECK_OK(sq_checkpoint_validate(&c, "tiny"));
    SQ_CHECK(sq_checkpoint_find(&c, "model.norm.weight") != NULL);
    SQ_CHECK(sq_checkpoint_find(&c, "nope") == NULL && sq_checkpoint_find(NULL, "x") == NULL);
    /* adding a duplicate fails and leaves the tensor with the caller */
    sq_tensor t = {.name = sq_strdup("model.norm.weight"), .type = SQ_TYPE_F32, .n_dims = 1, .shape = {1},
                   .data = calloc(1, 4), .nbytes = 4, .owns_data = true};
    SQ_CHECK(sq_checkpoint_add(&c, &t) == SQ_ERR_FORMAT && t.name != NULL);
    /* an extra tensor is reported by name */
    free(t.name);
    t.name = sq_strdup("model.layers.0.mlp.extra.weight");
    SQ_CHECK_OK(sq_checkpoint_add(&c, &t));
    SQ_CHECK(t.name == NULL && t.data == NULL);
    expect_fail(sq_checkpoint_validate(&c, "tiny"), SQ_ERR_FORMAT,
                "tiny: unexpected tensor 'model.layers.0.mlp.extra.weight' (shape [1])");
    sq_checkpoint_free(&c);
    SQ_CHECK(c.tensors == NULL && c.n_tensors == 0);
    sq_checkpoint_free(NULL);

    /* shape, missing, tied-with-head and vocabulary errors */
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
    c.cfg.n_kv_heads = 4;
    expect_fail(sq_checkpoint_validate(&c, "tiny"), SQ_ERR_FORMAT,
                "tiny: tensor 'model.layers.0.self_attn.k_proj.weight' has shape [32, 64] but the config implies [64, 64]");
    c.cfg.n_kv_heads = 2;
    c.cfg.tied_embeddings = true;
    expect_fail(sq_checkpoint_validate(&c, "tiny"), SQ_ERR_FORMAT, "'lm_head.weight' is present but the embeddings are tied");
    c.cfg.tied_embeddings = false;
    c.cfg.attn_qkv_bias = true;
    expect_fail(sq_checkpoint_validate(&c, "tiny"), SQ_ERR_FORMAT,
                "tiny: missing tensor 'model.layers.0.self_attn.q_proj.bias' (expected shape [64])");
    c.cfg.attn_qkv_bias = false;
    c.cfg.vocab_size = 256;
    expect_fail(sq_checkpoint_validate(&c, "tiny"), SQ_ERR_FORMAT, "has shape [512, 64] but the config implies [256, 64]");
    c.cfg.vocab_size = 512;
    c.tensors[3].nbytes -= 4;
    expect_fail(sq_checkpoint_validate(&c, "tiny"), SQ_ERR_FORMAT, "holds 8188 bytes");
    c.tensors[3].nbytes += 4;
    sq_checkpoint_free(&c);

    /* conversion: F32 -> BF16 touches matrices only; F16 -> F32 touches everything */
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
    float emb0, norm0;
    memcpy(&emb0, sq_checkpoint_find(&c, "model.embed_tokens.weight")->data, 4);
    memcpy(&norm0, sq_checkpoint_find(&c, "model.norm.weight")->data, 4);
    SQ_CHECK_OK(sq_checkpoint_convert(&c, SQ_TYPE_BF16));
    const sq_tensor *e = sq_checkpoint_find(&c, "model.embed_tokens.weight");
    const sq_tensor *n = sq_checkpoint_find(&c, "model.norm.weight");
    SQ_CHECK(e->type == SQ_TYPE_BF16 && e->nbytes == 512 * 64 * 2 && ((const uint16_t *)e->data)[0] == sq_f32_to_bf16(emb0));
    SQ_CHECK(n->type == SQ_TYPE_F32 && memcmp(n->data, &norm0, 4) == 0);
    SQ_CHECK_OK(sq_checkpoint_validate(&c, "converted"));
    SQ_CHECK_OK(sq_checkpoint_convert(&c, SQ_TYPE_F32));
    e = sq_checkpoint_find(&c, "model.embed_tokens.weight");
    SQ_CHECK(e->type == SQ_TYPE_F32 && ((const float *)e->data)[0] == sq_bf16_to_f32(sq_f32_to_bf16(emb0)));
    SQ_CHECK(sq_checkpoint_convert(&c, (sq_type)7) == SQ_ERR_ARG);
    sq_checkpoint_free(&c);

    /* sources are hashed */
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &c));
    file_write(tp("abc.txt"), "abc");
    SQ_CHECK_OK(sq_checkpoint_add_source(&c, tp("abc.txt")));
    SQ_CHECK(c.n_sources == 1 && c.sources[0].size == 3 &&
             strcmp(c.sources[0].sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    SQ_CHECK(sq_checkpoint_add_source(&c, tp("nope.txt")) == SQ_ERR_IO && c.n_sources == 1);
    sq_checkpoint_free(&c);
}

/* ===== Hugging Face ===== */

SQ_TEST(hf_types) {
    sq_tiny_spec s = sq_tiny_spec_default();
    hf_roundtrip(&s, "hf_f32", 0);
    s.type = SQ_TYPE_F16;
    hf_roundtrip(&s, "hf_f16", 0);
    s.type = SQ_TYPE_BF16;
    s.seed = 7;
    hf_roundtrip(&s, "hf_bf16", 0);
}

SQ_TEST(hf_sharded) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.type = SQ_TYPE_BF16;
    hf_roundtrip(&s, "hf_shard3", 3);
    s.tied = true;
    hf_roundtrip(&s, "hf_shard2_tied", 2);
}

SQ_TEST(hf_variants) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.tied = true; /* SmolLM-style */
    s.n_kv_heads = 1;
    s.n_tokens = 300; /* padded embedding rows */
    hf_roundtrip(&s, "hf_smollm", 0);
    s = sq_tiny_spec_default();
    s.arch = "qwen2"; /* q/k/v biases implied by the architecture */
    s.qkv_bias = true;
    s.tied = true;
    s.type = SQ_TYPE_BF16;
    s.norm_eps = 1e-6f;
    s.rope_theta = 1e6f;
    hf_roundtrip(&s, "hf_qwen2", 0);
    s = sq_tiny_spec_default();
    s.qkv_bias = s.o_bias = s.mlp_bias = true; /* llama attention_bias + mlp_bias */
    hf_roundtrip(&s, "hf_llama_bias", 0);
    s = sq_tiny_spec_default();
    s.head_dim = 32; /* explicit head_dim != hidden / heads */
    s.n_heads = 4;
    s.n_kv_heads = 4;
    hf_roundtrip(&s, "hf_head_dim", 0);
    s = sq_tiny_spec_default();
    s.arch = "mistral";
    s.n_layers = 1;
    hf_roundtrip(&s, "hf_mistral", 0);
}

SQ_TEST(hf_tokenizers) {
    /* tokenizer.json (byte-level BPE, SmolLM-style tied model) */
    sq_tiny_spec s = sq_tiny_spec_default();
    s.bpe = true;
    s.tied = true;
    s.n_tokens = 400;
    sq_checkpoint a, b;
    char why[256] = "";
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    const char *dir = tp("hf_bpe");
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, 0));
    SQ_CHECK_OK(sq_import_hf(dir, &b));
    SQ_CHECKF(sq_tiny_checkpoint_equal(&a, &b, true, why, sizeof why), "%s", why);
    SQ_CHECK(b.vocab.kind == SQ_VOCAB_BPE && b.vocab.n_merges > 0 && b.tokenizer_json != NULL);
    SQ_CHECK(b.n_sources == 4 && strstr(b.sources[1].path, "tokenizer.json") != NULL);
    sq_checkpoint_free(&b);
    /* with both files, tokenizer.model wins */
    sq_checkpoint spm;
    s.bpe = false;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &spm));
    SQ_CHECK_OK(sq_tiny_write_spm(&spm.vocab, tp2("hf_bpe", "tokenizer.model")));
    file_write(tp2("hf_bpe", "tokenizer_config.json"), "{\"add_bos_token\": false}");
    SQ_CHECK_OK(sq_import_hf(dir, &b));
    SQ_CHECK(b.vocab.kind == SQ_VOCAB_SPM && b.tokenizer_json == NULL && !b.vocab.add_bos);
    spm.vocab.add_bos = false;
    SQ_CHECKF(sq_tiny_vocab_equal(&spm.vocab, &b.vocab, why, sizeof why), "%s", why);
    sq_checkpoint_free(&b);
    /* a broken tokenizer file is reported with its path */
    file_write(tp2("hf_bpe", "tokenizer.model"), "not a protobuf");
    SQ_CHECK(sq_import_hf(dir, &b) != SQ_OK && strstr(sq_last_error(), "tokenizer.model") != NULL);
    sq_checkpoint_free(&spm);
    sq_checkpoint_free(&a);
}

SQ_TEST(hf_tying) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint a, b;
    char why[256] = "";
    /* lm_head absent but config says untied: tied */
    s.tied = true;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    a.cfg.tied_embeddings = false;
    SQ_CHECK_OK(sq_tiny_write_hf(&a, tp("hf_untied_cfg"), 0));
    a.cfg.tied_embeddings = true;
    SQ_CHECK_OK(sq_import_hf(tp("hf_untied_cfg"), &b));
    SQ_CHECKF(sq_tiny_checkpoint_equal(&a, &b, true, why, sizeof why), "%s", why);
    SQ_CHECK(b.cfg.tied_embeddings);
    sq_checkpoint_free(&a);
    sq_checkpoint_free(&b);
    /* config tied but lm_head present: the head is ignored, as transformers ties it */
    s.tied = false;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    a.cfg.tied_embeddings = true;
    SQ_CHECK_OK(sq_tiny_write_hf(&a, tp("hf_tied_head"), 0));
    sq_log_set_level(SQ_LOG_ERROR); /* (it warns) */
    SQ_CHECK_OK(sq_import_hf(tp("hf_tied_head"), &b));
    sq_log_set_level(SQ_LOG_INFO);
    SQ_CHECK(b.cfg.tied_embeddings && sq_checkpoint_find(&b, "lm_head.weight") == NULL);
    SQ_CHECK(b.n_tensors == a.n_tensors - 1);
    sq_checkpoint_free(&a);
    sq_checkpoint_free(&b);
}

SQ_TEST(hf_config_keys) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint a, b;
    char why[256] = "";
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    /* llama3 RoPE scaling ("rope_type") and linear ("type") */
    a.cfg.rope_scaling = SQ_ROPE_SCALING_LLAMA3;
    a.cfg.rope_factor = 32.0f;
    a.cfg.rope_low_freq_factor = 1.0f;
    a.cfg.rope_high_freq_factor = 4.0f;
    a.cfg.rope_orig_ctx = 64;
    a.cfg.rope_theta = 500000.0f;
    const char *dir = tp("hf_rope");
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, 0));
    SQ_CHECK_OK(sq_import_hf(dir, &b));
    SQ_CHECKF(sq_tiny_checkpoint_equal(&a, &b, false, why, sizeof why), "%s", why);
    sq_checkpoint_free(&b);
    a.cfg.rope_scaling = SQ_ROPE_SCALING_LINEAR;
    a.cfg.rope_factor = 2.0f;
    a.cfg.rope_low_freq_factor = a.cfg.rope_high_freq_factor = 0.0f;
    a.cfg.rope_orig_ctx = 0;
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, 0));
    SQ_CHECK_OK(sq_import_hf(dir, &b));
    SQ_CHECKF(sq_tiny_checkpoint_equal(&a, &b, false, why, sizeof why), "%s", why);
    sq_checkpoint_free(&b);

    /* new-style rope_parameters, eos as a list, head_dim null */
    char *cfgp = sq_strdup(tp2("hf_rope", "config.json"));
    file_replace(cfgp, "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2},",
                 "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 250000.0}, \"head_dim\": null,");
    file_replace(cfgp, "\"eos_token_id\": 2", "\"eos_token_id\": [2, 0]");
    SQ_CHECK_OK(sq_import_hf(dir, &b));
    SQ_CHECK(b.cfg.rope_scaling == SQ_ROPE_SCALING_NONE && b.cfg.rope_theta == 250000.0f && b.cfg.head_dim == 16);
    sq_checkpoint_free(&b);
    file_replace(cfgp, "\"rope_type\": \"default\"", "\"rope_type\": \"yarn\"");
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_UNSUPPORTED, "rope scaling type 'yarn' is not supported");
    file_replace(cfgp, "\"rope_type\": \"yarn\"", "\"rope_type\": \"llama3\"");
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_FORMAT, "llama3 rope scaling needs a numeric \"factor\"");
    file_replace(cfgp, "\"rope_type\": \"llama3\"", "\"rope_type\": \"default\"");

    /* Mistral sliding window below the context caps the context */
    file_replace(cfgp, "\"max_position_embeddings\": 128", "\"max_position_embeddings\": 128, \"sliding_window\": 64");
    sq_log_set_level(SQ_LOG_ERROR);
    SQ_CHECK_OK(sq_import_hf(dir, &b));
    sq_log_set_level(SQ_LOG_INFO);
    SQ_CHECK(b.cfg.max_seq_len == 64);
    sq_checkpoint_free(&b);

    /* wrong types and unsupported values name the key */
    file_replace(cfgp, "\"hidden_size\": 64", "\"hidden_size\": \"64\"");
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_FORMAT, "config.json: \"hidden_size\" must be an integer");
    file_replace(cfgp, "\"hidden_size\": \"64\"", "\"hidden_size\": 64");
    file_replace(cfgp, "\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"");
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_UNSUPPORTED, "hidden_act 'gelu' is not supported");
    file_replace(cfgp, "\"hidden_act\": \"gelu\"", "\"hidden_act\": \"silu\"");
    file_replace(cfgp, "LlamaForCausalLM", "GPT2LMHeadModel");
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_UNSUPPORTED, "architecture 'GPT2LMHeadModel' is not supported");
    file_replace(cfgp, "GPT2LMHeadModel", "LlamaForCausalLM");
    file_replace(cfgp, "\"mlp_bias\": false", "\"mlp_bias\": false, \"mlp_bias\": true");
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_FORMAT, "\"mlp_bias\" appears twice");
    file_write(cfgp, "{\"hidden_size\": ");
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_FORMAT, "config.json: not a JSON object");
    free(cfgp);
    sq_checkpoint_free(&a);
}

SQ_TEST(hf_errors) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint a, b;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    const char *dir = tp("hf_err");
    /* config that disagrees with the weights */
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, 0));
    file_replace(tp2("hf_err", "config.json"), "\"intermediate_size\": 96", "\"intermediate_size\": 100");
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_FORMAT,
                "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [96, 64] but the config implies [100, 64]");
    SQ_CHECK(strstr(sq_last_error(), dir) != NULL);
    SQ_CHECK(b.n_tensors == 0 && b.tensors == NULL);
    /* no tokenizer */
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, 0));
    unlink(tp2("hf_err", "tokenizer.model"));
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_FORMAT, "hf_err: no tokenizer (expected tokenizer.model or tokenizer.json)");
    /* no weights, no config */
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, 0));
    unlink(tp2("hf_err", "model.safetensors"));
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_IO, "no model.safetensors or model.safetensors.index.json");
    unlink(tp2("hf_err", "config.json"));
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_IO, "no config.json");
    expect_fail(sq_import_hf(tp("hf_nothing"), &b), SQ_ERR_IO, "not a directory");
    /* a missing tensor */
    sq_tensor *v = sq_checkpoint_find(&a, "model.layers.1.self_attn.v_proj.weight");
    sq_tensor keep = *v;
    *v = a.tensors[a.n_tensors - 1];
    a.n_tensors--;
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, 0));
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_FORMAT,
                "missing tensor 'model.layers.1.self_attn.v_proj.weight' (expected shape [32, 64])");
    /* an unknown tensor; rotary inv_freq buffers are dropped silently */
    a.tensors[a.n_tensors++] = *v;
    *v = keep;
    sq_tensor extra = {.name = sq_strdup("model.layers.0.self_attn.rotary_emb.inv_freq"), .type = SQ_TYPE_F32,
                       .n_dims = 1, .shape = {8}, .data = calloc(8, 4), .nbytes = 32, .owns_data = true};
    SQ_CHECK_OK(sq_checkpoint_add(&a, &extra));
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, 0));
    SQ_CHECK_OK(sq_import_hf(dir, &b));
    SQ_CHECK(b.n_tensors == a.n_tensors - 1);
    sq_checkpoint_free(&b);
    extra = (sq_tensor){.name = sq_strdup("model.layers.0.mlp.extra.weight"), .type = SQ_TYPE_F32, .n_dims = 1,
                        .shape = {8}, .data = calloc(8, 4), .nbytes = 32, .owns_data = true};
    SQ_CHECK_OK(sq_checkpoint_add(&a, &extra));
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, 0));
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_FORMAT, "unexpected tensor 'model.layers.0.mlp.extra.weight' (shape [8])");
    /* an unsupported dtype in the safetensors file (same element size, so it still tiles) */
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, 0));
    bin_replace(tp2("hf_err", "model.safetensors"), "\"lm_head.weight\":{\"dtype\":\"F32\"",
                "\"lm_head.weight\":{\"dtype\":\"I32\"");
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_UNSUPPORTED, "model.safetensors: tensor 'lm_head.weight': dtype I32");
    sq_checkpoint_free(&a);
    /* more tokens than embedding rows */
    s.n_tokens = 600;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    SQ_CHECK_OK(sq_tiny_write_hf(&a, tp("hf_bigvocab"), 0));
    expect_fail(sq_import_hf(tp("hf_bigvocab"), &b), SQ_ERR_FORMAT, "the tokenizer has 600 tokens but the embedding only 512 rows");
    sq_checkpoint_free(&a);
}

SQ_TEST(hf_shard_errors) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint a, b;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    const char *dir = tp("hf_sherr");
    char *idx = sq_strdup(tp2("hf_sherr", "model.safetensors.index.json"));
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, 2));
    /* a tensor mapped to the wrong shard */
    file_replace(idx, "\"lm_head.weight\": \"model-00001-of-00002.safetensors\"",
                 "\"lm_head.weight\": \"model-00002-of-00002.safetensors\"");
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_FORMAT, "tensor 'lm_head.weight' (listed in");
    SQ_CHECK(strstr(sq_last_error(), "model-00002-of-00002.safetensors: tensor") != NULL);
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, 2));
    file_replace(idx, "\"weight_map\": {", "\"weight_map\": {\n    \"lm_head.weight\": \"model-00001-of-00002.safetensors\",");
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_FORMAT, "tensor 'lm_head.weight' is listed twice");
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, 2));
    file_replace(idx, "\"lm_head.weight\": \"model-00001-of-00002.safetensors\"",
                 "\"lm_head.weight\": \"../model-00001-of-00002.safetensors\"");
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_FORMAT, "shard must be a file name in the same directory");
    SQ_CHECK_OK(sq_tiny_write_hf(&a, dir, 2));
    unlink(tp2("hf_sherr", "model-00002-of-00002.safetensors"));
    expect_fail(sq_import_hf(dir, &b), SQ_ERR_IO, "model-00002-of-00002.safetensors: cannot open");
    free(idx);
    sq_checkpoint_free(&a);
}

/* ===== llama2.c ===== */

/* Writes spec s as llama2.c `version` and checks the import (v2: against the dequantized
 * weights). */
static void l2c_roundtrip(const sq_tiny_spec *s, int version, const char *name) {
    sq_checkpoint a, b;
    char why[256] = "", path[1100];
    SQ_CHECK_OK(sq_tiny_checkpoint(s, &a));
    SQ_CHECK_OK(sq_tiny_mkdir(tp(name)));
    snprintf(path, sizeof path, "%s/model.bin", tp(name));
    SQ_CHECK_OK(sq_tiny_write_llama2c(&a, path, version));
    SQ_CHECK_OK(sq_import_llama2c(path, NULL, &b));
    SQ_CHECK_OK(sq_checkpoint_convert(&a, SQ_TYPE_F32));
    if (version == 2) {
        int32_t gs = sq_tiny_llama2c_group_size(a.cfg.dim);
        for (int i = 0; i < a.n_tensors; i++)
            if (a.tensors[i].n_dims == 2) sq_tiny_q80_roundtrip(a.tensors[i].data, sq_tensor_numel(&a.tensors[i]), gs);
    }
    SQ_CHECKF(sq_tiny_checkpoint_equal(&a, &b, true, why, sizeof why), "%s: %s", name, why);
    char fmt[16];
    snprintf(fmt, sizeof fmt, "llama2c-v%d", version);
    SQ_CHECK(b.source_format && strcmp(b.source_format, fmt) == 0);
    SQ_CHECK(b.n_sources == 2 && b.config_json == NULL);
    SQ_CHECK(b.cfg.rope_layout == SQ_ROPE_INTERLEAVED && b.cfg.rope_theta == 10000.0f && b.cfg.norm_eps == 1e-5f);
    sq_checkpoint_free(&a);
    sq_checkpoint_free(&b);
}

SQ_TEST(llama2c_versions) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.rope_layout = SQ_ROPE_INTERLEAVED;
    s.tied = true;
    l2c_roundtrip(&s, 0, "l2c_v0_tied");
    l2c_roundtrip(&s, 1, "l2c_v1_tied");
    l2c_roundtrip(&s, 2, "l2c_v2_tied");
    s.tied = false;
    s.n_kv_heads = 4;
    s.seed = 3;
    l2c_roundtrip(&s, 0, "l2c_v0_untied");
    l2c_roundtrip(&s, 1, "l2c_v1_untied");
    s.dim = 48; /* group size 16 */
    s.n_heads = 3;
    s.n_kv_heads = 1;
    l2c_roundtrip(&s, 2, "l2c_v2_untied");
}

SQ_TEST(llama2c_layout) {
    /* a rotate-half model written to llama2.c comes back interleaved: q/k rows permuted */
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint a, b;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    SQ_CHECK_OK(sq_tiny_mkdir(tp("l2c_perm")));
    SQ_CHECK_OK(sq_tiny_write_llama2c(&a, tp2("l2c_perm", "m.bin"), 0));
    SQ_CHECK_OK(sq_import_llama2c(tp2("l2c_perm", "m.bin"), tp2("l2c_perm", "tokenizer.bin"), &b));
    for (int i = 0; i < a.n_tensors; i++) {
        const sq_tensor *x = &a.tensors[i], *y = &b.tensors[i];
        bool qk = strstr(x->name, "q_proj") || strstr(x->name, "k_proj");
        if (!qk) {
            SQ_CHECK(memcmp(x->data, y->data, x->nbytes) == 0);
            continue;
        }
        /* row h*d + t*d/2 + i of the HF tensor is row h*d + 2i + t of the import */
        int32_t d = a.cfg.head_dim, heads = (int32_t)(x->shape[0] / d);
        size_t row = (size_t)x->shape[1] * 4;
        for (int32_t h = 0; h < heads; h++)
            for (int32_t k = 0; k < d; k++) {
                int32_t t = k / (d / 2), j = k % (d / 2);
                SQ_CHECK(memcmp((const char *)x->data + (size_t)(h * d + k) * row,
                                (const char *)y->data + (size_t)(h * d + 2 * j + t) * row, row) == 0);
            }
    }
    sq_checkpoint_free(&a);
    sq_checkpoint_free(&b);
}

SQ_TEST(llama2c_errors) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.rope_layout = SQ_ROPE_INTERLEAVED;
    sq_checkpoint a, b;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    SQ_CHECK_OK(sq_tiny_mkdir(tp("l2c_err")));
    char bin[1100];
    snprintf(bin, sizeof bin, "%s", tp2("l2c_err", "m.bin"));
    for (int version = 0; version <= 2; version++) {
        SQ_CHECK_OK(sq_tiny_write_llama2c(&a, bin, version));
        char *d = NULL;
        size_t n = 0;
        SQ_CHECK_OK(sq_read_file(bin, (size_t)1 << 28, &d, &n));
        /* truncated by 4 bytes */
        SQ_CHECK_OK(sq_tiny_write_file(bin, d, n - 4));
        char want[160];
        snprintf(want, sizeof want, "m.bin: file is %zu bytes but its llama2.c v%d header", n - 4, version);
        expect_fail(sq_import_llama2c(bin, NULL, &b), SQ_ERR_FORMAT, want);
        snprintf(want, sizeof want, "implies %zu", n);
        SQ_CHECK(strstr(sq_last_error(), want) != NULL);
        /* 4 bytes too many */
        FILE *fp = fopen(bin, "wb");
        fwrite(d, 1, n, fp);
        fwrite("\0\0\0\0", 1, 4, fp);
        fclose(fp);
        expect_fail(sq_import_llama2c(bin, NULL, &b), SQ_ERR_FORMAT, "implies");
        free(d);
    }
    /* a version this importer does not know */
    SQ_CHECK_OK(sq_tiny_write_llama2c(&a, bin, 1));
    char *d = NULL;
    size_t n = 0;
    SQ_CHECK_OK(sq_read_file(bin, (size_t)1 << 28, &d, &n));
    d[4] = 3;
    SQ_CHECK_OK(sq_tiny_write_file(bin, d, n));
    expect_fail(sq_import_llama2c(bin, NULL, &b), SQ_ERR_UNSUPPORTED, "llama2.c format version 3 is not supported");
    d[4] = 1;
    d[8 + 12] = 5; /* 5 heads do not divide dim 64 */
    SQ_CHECK_OK(sq_tiny_write_file(bin, d, n));
    expect_fail(sq_import_llama2c(bin, NULL, &b), SQ_ERR_FORMAT, "dim 64 is not a multiple of 5 heads");
    free(d);
    SQ_CHECK_OK(sq_tiny_write_file(bin, "\1\0\0\0", 4));
    expect_fail(sq_import_llama2c(bin, NULL, &b), SQ_ERR_FORMAT, "too short");
    /* tokenizer: tok<N>.bin is preferred, an explicit path wins, none is an error */
    SQ_CHECK_OK(sq_tiny_write_llama2c(&a, bin, 0));
    SQ_CHECK(rename(tp2("l2c_err", "tokenizer.bin"), tp2("l2c_err", "tok512.bin")) == 0);
    SQ_CHECK_OK(sq_import_llama2c(bin, NULL, &b));
    SQ_CHECK(b.n_sources == 2 && strstr(b.sources[1].path, "tok512.bin") != NULL);
    sq_checkpoint_free(&b);
    SQ_CHECK_OK(sq_import_llama2c(bin, tp2("l2c_err", "tok512.bin"), &b));
    sq_checkpoint_free(&b);
    unlink(tp2("l2c_err", "tok512.bin"));
    expect_fail(sq_import_llama2c(bin, NULL, &b), SQ_ERR_IO, "no tokenizer (expected tok512.bin or tokenizer.bin");
    expect_fail(sq_import_llama2c(bin, tp2("l2c_err", "missing.bin"), &b), SQ_ERR_IO, "missing.bin");
    SQ_CHECK(b.n_tensors == 0 && b.tensors == NULL);
    sq_checkpoint_free(&a);
}

/* ===== sq_import_any ===== */

SQ_TEST(import_any) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint a, b;
    char why[256] = "";
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    SQ_CHECK_OK(sq_tiny_write_hf(&a, tp("any_hf"), 0));
    SQ_CHECK_OK(sq_import_any(tp("any_hf"), NULL, &b));
    SQ_CHECKF(sq_tiny_checkpoint_equal(&a, &b, true, why, sizeof why), "%s", why);
    sq_checkpoint_free(&b);
    SQ_CHECK_OK(sq_import_any(tp2("any_hf", "model.safetensors"), NULL, &b));
    SQ_CHECK(b.source_format && strcmp(b.source_format, "hf-safetensors") == 0);
    /* through the store */
    SQ_CHECK_OK(sq_store_write(tp("any.h5"), &b));
    sq_checkpoint_free(&b);
    SQ_CHECK_OK(sq_import_any(tp("any.h5"), NULL, &b));
    SQ_CHECKF(sq_tiny_checkpoint_equal(&a, &b, true, why, sizeof why), "%s", why);
    SQ_CHECK(b.source_format && strcmp(b.source_format, "hf-safetensors") == 0 && b.n_sources == 4);
    sq_checkpoint_free(&b);
    /* llama2.c, v0 sniffed from the header and v2 from the magic */
    SQ_CHECK_OK(sq_tiny_mkdir(tp("any_l2c")));
    SQ_CHECK_OK(sq_tiny_write_llama2c(&a, tp2("any_l2c", "m0.bin"), 0));
    SQ_CHECK_OK(sq_import_any(tp2("any_l2c", "m0.bin"), NULL, &b));
    SQ_CHECK(b.source_format && strcmp(b.source_format, "llama2c-v0") == 0);
    sq_checkpoint_free(&b);
    SQ_CHECK_OK(sq_tiny_write_llama2c(&a, tp2("any_l2c", "m2.bin"), 2));
    SQ_CHECK_OK(sq_import_any(tp2("any_l2c", "m2.bin"), tp2("any_l2c", "tokenizer.bin"), &b));
    SQ_CHECK(b.source_format && strcmp(b.source_format, "llama2c-v2") == 0);
    sq_checkpoint_free(&b);
    /* neither */
    file_write(tp("junk.bin"), "this is not a model at all, just some text");
    expect_fail(sq_import_any(tp("junk.bin"), NULL, &b), SQ_ERR_FORMAT, "junk.bin: not a recognized model");
    expect_fail(sq_import_any(tp("absent.bin"), NULL, &b), SQ_ERR_IO, "absent.bin: no such file");
    sq_checkpoint_free(&a);
}

/* ===== Real models ===== */

SQ_TEST(shared_stories260k) {
    const char *bin = sq_test_shared_path("models/stories260K/stories260K.bin");
    if (!bin) SQ_SKIP("../shared/models/stories260K not found");
    sq_checkpoint c;
    SQ_CHECK_OK(sq_import_any(bin, NULL, &c));
    const sq_config *k = &c.cfg;
    SQ_CHECK(k->dim == 64 && k->hidden_dim == 172 && k->n_layers == 5 && k->n_heads == 8 && k->n_kv_heads == 4);
    SQ_CHECK(k->vocab_size == 512 && k->max_seq_len == 512 && k->head_dim == 8 && k->tied_embeddings);
    SQ_CHECK(k->rope_layout == SQ_ROPE_INTERLEAVED && strcmp(k->arch, "llama") == 0);
    SQ_CHECK(c.vocab.n_tokens == 512 && c.vocab.bos_id == 1 && c.vocab.eos_id == 2);
    SQ_CHECK(c.source_format && strcmp(c.source_format, "llama2c-v0") == 0);
    SQ_CHECK(c.n_tensors == 2 + 5 * 9);
    SQ_CHECK_OK(sq_checkpoint_validate(&c, bin));
    /* first weight of the file (offset 28) is the first embedding value */
    float w0;
    memcpy(&w0, c.tensors[0].data, 4);
    SQ_CHECK_CLOSE(w0, -0.294749737, 0, 1e-6);
    /* and the store keeps it bit for bit */
    sq_checkpoint r;
    char why[256] = "";
    SQ_CHECK_OK(sq_store_write(tp("stories.h5"), &c));
    SQ_CHECK_OK(sq_store_read(tp("stories.h5"), &r));
    SQ_CHECKF(sq_tiny_checkpoint_equal(&c, &r, true, why, sizeof why), "%s", why);
    sq_checkpoint_free(&r);
    sq_checkpoint_free(&c);
}

SQ_TEST(shared_gutenberg) {
    const char *dir = sq_test_shared_path("models/gutenberg-7m");
    if (!dir) SQ_SKIP("../shared/models/gutenberg-7m not found");
    sq_checkpoint c;
    SQ_CHECK_OK(sq_import_any(dir, NULL, &c));
    const sq_config *k = &c.cfg;
    SQ_CHECK(k->dim == 256 && k->hidden_dim == 768 && k->n_layers == 6 && k->n_heads == 4 && k->n_kv_heads == 2);
    SQ_CHECK(k->head_dim == 64 && k->vocab_size == 4096 && k->max_seq_len == 256 && !k->tied_embeddings);
    SQ_CHECK(k->rope_layout == SQ_ROPE_HALF && k->norm_eps == 1e-5f && k->rope_theta == 10000.0f);
    SQ_CHECK(c.vocab.n_tokens == 4096 && c.vocab.add_bos && !c.vocab.add_eos && c.vocab.bos_id == 1);
    SQ_CHECK(c.n_tensors == 3 + 6 * 9);
    for (int i = 0; i < c.n_tensors; i++) SQ_CHECK(c.tensors[i].type == SQ_TYPE_F16);
    SQ_CHECK(strcmp(c.tensors[0].name, "model.embed_tokens.weight") == 0);
    SQ_CHECK(strcmp(c.tensors[c.n_tensors - 1].name, "lm_head.weight") == 0);
    SQ_CHECK(c.n_sources == 4);
    int64_t params = 0;
    for (int i = 0; i < c.n_tensors; i++) params += sq_tensor_numel(&c.tensors[i]);
    SQ_CHECK(params == 6819072);
    /* the bytes equal the file's */
    sq_safetensors *f = NULL;
    char *st = sq_path_join(dir, "model.safetensors");
    SQ_CHECK_OK(sq_safetensors_open(&f, st));
    for (int i = 0; f && i < c.n_tensors; i++) {
        const sq_tensor *t = sq_safetensors_find(f, c.tensors[i].name);
        SQ_CHECK(t && t->nbytes == c.tensors[i].nbytes && memcmp(t->data, c.tensors[i].data, t->nbytes) == 0);
    }
    sq_safetensors_close(f);
    free(st);
    sq_checkpoint r;
    char why[256] = "";
    SQ_CHECK_OK(sq_store_write(tp("gutenberg.h5"), &c));
    SQ_CHECK_OK(sq_store_read(tp("gutenberg.h5"), &r));
    SQ_CHECKF(sq_tiny_checkpoint_equal(&c, &r, true, why, sizeof why), "%s", why);
    SQ_CHECK(r.config_json && strcmp(r.config_json, c.config_json) == 0);
    sq_checkpoint_free(&r);
    sq_checkpoint_free(&c);
}

/* Found by the libFuzzer harnesses (tests/fuzz/libfuzzer_readers.c, clang's UBSan): an empty
 * file mapped to NULL, and the tokenizer readers computed NULL + 0 before checking the size. */
SQ_TEST(empty_files_refused) {
    char p[512];
    snprintf(p, sizeof p, "%s/empty.bin", sq_test_tmpdir());
    SQ_CHECK_OK(sq_tiny_write_file(p, "", 0));
    sq_mapping m;
    SQ_CHECK_OK(sq_map_file(p, &m));
    SQ_CHECK(m.data != NULL && m.size == 0);
    sq_unmap_file(&m);
    SQ_CHECK(m.data == NULL);
    sq_vocab v;
    SQ_CHECK(sq_vocab_read_spm(p, &v) == SQ_ERR_FORMAT && strstr(sq_last_error(), "empty.bin"));
    SQ_CHECK(sq_vocab_read_llama2c(p, 512, &v) == SQ_ERR_FORMAT && strstr(sq_last_error(), "empty.bin"));
    sq_checkpoint c;
    SQ_CHECK(sq_import_llama2c(p, p, &c) == SQ_ERR_FORMAT && strstr(sq_last_error(), "empty.bin"));
    SQ_CHECK(sq_import_gguf(p, &c) == SQ_ERR_FORMAT && strstr(sq_last_error(), "empty.bin"));
}

int main(void) {
    SQ_RUN(empty_files_refused);
    SQ_RUN(checkpoint_api);
    SQ_RUN(hf_types);
    SQ_RUN(hf_sharded);
    SQ_RUN(hf_variants);
    SQ_RUN(hf_tokenizers);
    SQ_RUN(hf_tying);
    SQ_RUN(hf_config_keys);
    SQ_RUN(hf_errors);
    SQ_RUN(hf_shard_errors);
    SQ_RUN(llama2c_versions);
    SQ_RUN(llama2c_layout);
    SQ_RUN(llama2c_errors);
    SQ_RUN(import_any);
    SQ_RUN(shared_stories260k);
    SQ_RUN(shared_gutenberg);
    return sq_test_summary();
}

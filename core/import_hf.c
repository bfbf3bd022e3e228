/* import_hf.c - imports a Hugging Face model directory (Llama, Mistral, Qwen2 and
 * SmolLM-style tied Llama): config.json read by the key table of FORMATS.md 2 with the
 * transformers LlamaConfig defaults, RoPE in its legacy (rope_theta/rope_scaling) or new
 * (rope_parameters) spelling, weights from model.safetensors or a sharded set named by
 * model.safetensors.index.json (FORMATS.md 1), and the tokenizer via core/vocab_io.c.
 * Tensors are copied into owned 64-byte-aligned buffers in their stored dtype, in canonical
 * model order. q/k rows stay in the Hugging Face rotate-half layout (SQ_ROPE_HALF).
 * Not handled: packed GPTQ/AWQ checkpoints (Appendix A) and RoPE types other than
 * default/linear/llama3, which are refused with a message naming the type.
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"
#include "safetensors.h"
#include "util.h"

#define JSON_MAX_BYTES ((size_t)64 << 20)

/* ===== config.json ===== */

typedef struct {
    const char *path;
    const cJSON *root;
} cfgsrc;

/* A JSON number that is an integer in int32 range. */
static bool json_int32(const cJSON *v, int32_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != (double)(int32_t)d) return false;
    *out = (int32_t)d;
    return true;
}

/* Absent or null keys give the default; a present key of the wrong type is an error. */
static sq_status get_int(const cfgsrc *s, const cJSON *obj, const char *key, int32_t def, int32_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return SQ_OK;
    }
    if (!json_int32(v, out)) return sq_errorf(SQ_ERR_FORMAT, "%s: \"%s\" must be an integer", s->path, key);
    return SQ_OK;
}

static sq_status get_num(const cfgsrc *s, const cJSON *obj, const char *key, double def, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return SQ_OK;
    }
    if (!cJSON_IsNumber(v)) return sq_errorf(SQ_ERR_FORMAT, "%s: \"%s\" must be a number", s->path, key);
    *out = v->valuedouble;
    return SQ_OK;
}

static sq_status get_bool(const cfgsrc *s, const cJSON *obj, const char *key, bool def, bool *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return SQ_OK;
    }
    if (!cJSON_IsBool(v)) return sq_errorf(SQ_ERR_FORMAT, "%s: \"%s\" must be true or false", s->path, key);
    *out = cJSON_IsTrue(v);
    return SQ_OK;
}

/* A key that must be present (rope scaling parameters). */
static sq_status need_num(const cfgsrc *s, const cJSON *obj, const char *what, const char *key, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v))
        return sq_errorf(SQ_ERR_FORMAT, "%s: %s needs a numeric \"%s\"", s->path, what, key);
    *out = v->valuedouble;
    return SQ_OK;
}

static const struct {
    const char *arch_class, *model_type;
} known_archs[] = {
    {"LlamaForCausalLM", "llama"},
    {"MistralForCausalLM", "mistral"},
    {"Qwen2ForCausalLM", "qwen2"},
};

static sq_status parse_arch(const cfgsrc *s, sq_config *cfg) {
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(s->root, "architectures");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(s->root, "model_type");
    size_t n_known = sizeof known_archs / sizeof known_archs[0];
    if (archs && !cJSON_IsNull(archs)) {
        const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
        if (!cJSON_IsString(a0))
            return sq_errorf(SQ_ERR_FORMAT, "%s: \"architectures\" must be a list of strings", s->path);
        for (size_t i = 0; i < n_known; i++)
            if (strcmp(a0->valuestring, known_archs[i].arch_class) == 0) {
                snprintf(cfg->arch, sizeof cfg->arch, "%s", known_archs[i].model_type);
                return SQ_OK;
            }
        return sq_errorf(SQ_ERR_UNSUPPORTED,
                         "%s: architecture '%.64s' is not supported (squish imports LlamaForCausalLM, "
                         "MistralForCausalLM and Qwen2ForCausalLM)",
                         s->path, a0->valuestring);
    }
    if (cJSON_IsString(mt)) {
        for (size_t i = 0; i < n_known; i++)
            if (strcmp(mt->valuestring, known_archs[i].model_type) == 0) {
                snprintf(cfg->arch, sizeof cfg->arch, "%s", known_archs[i].model_type);
                return SQ_OK;
            }
        return sq_errorf(SQ_ERR_UNSUPPORTED,
                         "%s: model_type '%.64s' is not supported (squish imports llama, mistral and qwen2)", s->path,
                         mt->valuestring);
    }
    return sq_errorf(SQ_ERR_FORMAT, "%s: config has neither \"architectures\" nor \"model_type\"", s->path);
}

/* RoPE: legacy top-level rope_theta + rope_scaling ({"type"|"rope_type": ...}), or the new
 * rope_parameters object (which carries rope_theta too). */
static sq_status parse_rope(const cfgsrc *s, sq_config *cfg) {
    sq_status st;
    double theta;
    if ((st = get_num(s, s->root, "rope_theta", 10000.0, &theta)) != SQ_OK) return st;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(s->root, "rope_parameters");
    const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(s->root, "rope_scaling");
    const char *what = "rope_scaling";
    if (params && !cJSON_IsNull(params)) {
        if (!cJSON_IsObject(params)) return sq_errorf(SQ_ERR_FORMAT, "%s: \"rope_parameters\" must be an object", s->path);
        if ((st = get_num(s, params, "rope_theta", theta, &theta)) != SQ_OK) return st;
        scaling = params;
        what = "rope_parameters";
    }
    cfg->rope_theta = (float)theta;
    cfg->rope_scaling = SQ_ROPE_SCALING_NONE;
    cfg->rope_factor = 1.0f;
    if (!scaling || cJSON_IsNull(scaling)) return SQ_OK;
    if (!cJSON_IsObject(scaling)) return sq_errorf(SQ_ERR_FORMAT, "%s: \"%s\" must be an object or null", s->path, what);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(scaling, "rope_type");
    if (!type || cJSON_IsNull(type)) type = cJSON_GetObjectItemCaseSensitive(scaling, "type");
    if (!type || cJSON_IsNull(type)) {
        if (scaling == params) return SQ_OK; /* rope_parameters with only rope_theta */
        return sq_errorf(SQ_ERR_FORMAT, "%s: \"%s\" has no \"rope_type\"", s->path, what);
    }
    if (!cJSON_IsString(type)) return sq_errorf(SQ_ERR_FORMAT, "%s: %s type must be a string", s->path, what);
    const char *t = type->valuestring;
    double v = 0.0;
    if (strcmp(t, "default") == 0) return SQ_OK;
    if (strcmp(t, "linear") == 0) {
        if ((st = need_num(s, scaling, "linear rope scaling", "factor", &v)) != SQ_OK) return st;
        cfg->rope_scaling = SQ_ROPE_SCALING_LINEAR;
        cfg->rope_factor = (float)v;
        return SQ_OK;
    }
    if (strcmp(t, "llama3") == 0) {
        cfg->rope_scaling = SQ_ROPE_SCALING_LLAMA3;
        if ((st = need_num(s, scaling, "llama3 rope scaling", "factor", &v)) != SQ_OK) return st;
        cfg->rope_factor = (float)v;
        if ((st = need_num(s, scaling, "llama3 rope scaling", "low_freq_factor", &v)) != SQ_OK) return st;
        cfg->rope_low_freq_factor = (float)v;
        if ((st = need_num(s, scaling, "llama3 rope scaling", "high_freq_factor", &v)) != SQ_OK) return st;
        cfg->rope_high_freq_factor = (float)v;
        int32_t orig;
        if ((st = get_int(s, scaling, "original_max_position_embeddings", -1, &orig)) != SQ_OK) return st;
        if (orig <= 0)
            return sq_errorf(SQ_ERR_FORMAT, "%s: llama3 rope scaling needs \"original_max_position_embeddings\"",
                             s->path);
        cfg->rope_orig_ctx = orig;
        return SQ_OK;
    }
    return sq_errorf(SQ_ERR_UNSUPPORTED,
                     "%s: rope scaling type '%.32s' is not supported (squish handles default, linear and llama3)",
                     s->path, t);
}

/* Fills cfg from config.json; *bos / *eos get the special ids the config names explicitly
 * (-1 if absent: they only fill ids the tokenizer files leave unset). */
static sq_status parse_config(const char *path, const char *text, sq_config *cfg, int32_t *bos, int32_t *eos) {
    sq_status st = SQ_OK;
    cJSON *root = cJSON_Parse(text);
    cfgsrc s = {path, root};
    memset(cfg, 0, sizeof *cfg);
    if (!root || !cJSON_IsObject(root)) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: not a JSON object", path);
        goto fail;
    }
    bool oom = false;
    const char *dup = sq_json_duplicate_key(root, &oom);
    if (oom || dup) {
        st = oom ? sq_errorf(SQ_ERR_OOM, "%s: out of memory", path)
                 : sq_errorf(SQ_ERR_FORMAT, "%s: key \"%.64s\" appears twice", path, dup);
        goto fail;
    }
    if ((st = parse_arch(&s, cfg)) != SQ_OK) goto fail;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !cJSON_IsNull(act) &&
        (!cJSON_IsString(act) || (strcmp(act->valuestring, "silu") != 0 && strcmp(act->valuestring, "swish") != 0))) {
        st = sq_errorf(SQ_ERR_UNSUPPORTED, "%s: hidden_act '%.32s' is not supported (squish implements silu)", path,
                       cJSON_IsString(act) ? act->valuestring : "?");
        goto fail;
    }
#define INT(key, def, field) \
    if ((st = get_int(&s, root, key, def, &cfg->field)) != SQ_OK) goto fail;
    INT("vocab_size", 32000, vocab_size)
    INT("hidden_size", 4096, dim)
    INT("intermediate_size", 11008, hidden_dim)
    INT("num_hidden_layers", 32, n_layers)
    INT("num_attention_heads", 32, n_heads)
    INT("num_key_value_heads", cfg->n_heads, n_kv_heads)
    INT("max_position_embeddings", 2048, max_seq_len)
#undef INT
    if (cfg->n_heads <= 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: num_attention_heads is %d", path, cfg->n_heads);
        goto fail;
    }
    int32_t hd_default = cfg->dim % cfg->n_heads == 0 ? cfg->dim / cfg->n_heads : -1;
    if ((st = get_int(&s, root, "head_dim", hd_default, &cfg->head_dim)) != SQ_OK) goto fail;
    if (cfg->head_dim < 0) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: hidden_size %d is not a multiple of %d heads and head_dim is not given",
                       path, cfg->dim, cfg->n_heads);
        goto fail;
    }
    double eps;
    if ((st = get_num(&s, root, "rms_norm_eps", 1e-6, &eps)) != SQ_OK) goto fail;
    cfg->norm_eps = (float)eps;
    if ((st = parse_rope(&s, cfg)) != SQ_OK) goto fail;
    if ((st = get_bool(&s, root, "tie_word_embeddings", false, &cfg->tied_embeddings)) != SQ_OK) goto fail;
    bool attn_bias, mlp_bias;
    if ((st = get_bool(&s, root, "attention_bias", false, &attn_bias)) != SQ_OK) goto fail;
    if ((st = get_bool(&s, root, "mlp_bias", false, &mlp_bias)) != SQ_OK) goto fail;
    bool qwen2 = strcmp(cfg->arch, "qwen2") == 0;
    cfg->attn_qkv_bias = attn_bias || qwen2; /* Qwen2: q/k/v always have biases, o never */
    cfg->attn_o_bias = attn_bias && !qwen2;
    cfg->mlp_bias = mlp_bias;
    cfg->rope_layout = SQ_ROPE_HALF;

    /* Windowed attention equals full attention while the context fits in the window, so
     * cap the context there rather than mis-model longer ones. */
    int32_t window;
    bool use_window = !qwen2;
    if ((st = get_bool(&s, root, "use_sliding_window", use_window, &use_window)) != SQ_OK) goto fail;
    if ((st = get_int(&s, root, "sliding_window", 0, &window)) != SQ_OK) goto fail;
    if (use_window && window > 0 && window < cfg->max_seq_len) {
        sq_log(SQ_LOG_WARN, "%s: sliding_window %d < max_position_embeddings %d: context capped at %d", path, window,
               cfg->max_seq_len, window);
        cfg->max_seq_len = window;
    }

    if ((st = get_int(&s, root, "bos_token_id", -1, bos)) != SQ_OK) goto fail;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    if (cJSON_IsArray(e)) {
        const cJSON *e0 = cJSON_GetArrayItem(e, 0);
        *eos = -1;
        if (e0 && !json_int32(e0, eos)) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: \"eos_token_id\" must be an integer or a list of integers", path);
            goto fail;
        }
    } else if ((st = get_int(&s, root, "eos_token_id", -1, eos)) != SQ_OK) {
        goto fail;
    }
    if ((st = sq_config_validate(cfg, path)) != SQ_OK) goto fail;
fail:
    cJSON_Delete(root);
    return st;
}

/* ===== Weights ===== */

/* One tensor available for import: where it lives. */
typedef struct {
    const char *name;     /* borrowed from its shard */
    const sq_tensor *t;   /* borrowed from its shard */
    const char *file;     /* shard path, for messages */
    bool used;
} avail;

/* Reads model.safetensors.index.json and opens each shard it names once. */
static sq_status open_sharded(const char *dir, const char *index_path, sq_safetensors ***shards_out,
                              char ***shard_paths_out, int32_t *n_shards_out, avail **av_out, int32_t *n_av_out) {
    sq_status st = SQ_OK;
    char *text = NULL;
    cJSON *root = NULL;
    sq_safetensors **shards = NULL;
    char **paths = NULL;
    avail *av = NULL;
    int32_t n_shards = 0, n_av = 0;
    if ((st = sq_read_file(index_path, JSON_MAX_BYTES, &text, NULL)) != SQ_OK) goto fail;
    root = cJSON_Parse(text);
    if (!cJSON_IsObject(root)) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: not a JSON object", index_path);
        goto fail;
    }
    bool oom = false;
    const char *dup = sq_json_duplicate_key(root, &oom);
    if (oom || dup) {
        st = oom ? sq_errorf(SQ_ERR_OOM, "%s: out of memory", index_path)
                 : sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%.200s' is listed twice", index_path, dup);
        goto fail;
    }
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm) || !wm->child) {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: missing or empty \"weight_map\"", index_path);
        goto fail;
    }
    int n_map = cJSON_GetArraySize(wm);
    shards = calloc((size_t)n_map, sizeof *shards);
    paths = calloc((size_t)n_map, sizeof *paths);
    av = calloc((size_t)n_map, sizeof *av);
    int32_t *which = calloc((size_t)n_map, sizeof *which);
    const char **names = calloc((size_t)n_map, sizeof *names);
    if (!shards || !paths || !av || !which || !names) {
        free(which);
        free(names);
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", index_path);
        goto fail;
    }
    /* distinct shard names in order of first appearance */
    int k = 0;
    for (const cJSON *it = wm->child; it; it = it->next, k++) {
        if (!cJSON_IsString(it) || !it->valuestring[0] || strchr(it->valuestring, '/')) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%.200s': shard must be a file name in the same directory",
                           index_path, it->string);
            break;
        }
        int32_t j = 0;
        while (j < n_shards && strcmp(paths[j] + strlen(dir) + 1, it->valuestring) != 0) j++;
        if (j == n_shards) {
            char *sp = malloc(strlen(dir) + strlen(it->valuestring) + 2);
            if (!sp) {
                st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", index_path);
                break;
            }
            sprintf(sp, "%s/%s", dir, it->valuestring);
            paths[n_shards++] = sp;
        }
        which[k] = j;
        names[k] = it->string;
    }
    for (int32_t j = 0; st == SQ_OK && j < n_shards; j++) st = sq_safetensors_open(&shards[j], paths[j]);
    for (k = 0; st == SQ_OK && k < n_map; k++) {
        const sq_tensor *t = sq_safetensors_find(shards[which[k]], names[k]);
        if (!t) {
            st = sq_errorf(SQ_ERR_FORMAT, "%s: tensor '%.200s' (listed in %s) is missing from this shard",
                           paths[which[k]], names[k], index_path);
            break;
        }
        av[n_av].name = t->name;
        av[n_av].t = t;
        av[n_av].file = paths[which[k]];
        n_av++;
    }
    free(which);
    free(names);
    if (st != SQ_OK) goto fail;
    cJSON_Delete(root);
    free(text);
    *shards_out = shards;
    *shard_paths_out = paths;
    *n_shards_out = n_shards;
    *av_out = av;
    *n_av_out = n_av;
    return SQ_OK;
fail:
    for (int32_t j = 0; shards && j < n_shards; j++) sq_safetensors_close(shards[j]);
    for (int32_t j = 0; paths && j < n_shards; j++) free(paths[j]);
    free(shards);
    free(paths);
    free(av);
    cJSON_Delete(root);
    free(text);
    return st;
}

static sq_status copy_tensor(sq_checkpoint *c, const avail *a) {
    sq_tensor t = *a->t;
    t.name = sq_strdup(a->t->name);
    t.data = sq_alloc_aligned(a->t->nbytes);
    t.owns_data = true;
    if (!t.name || !t.data) {
        free(t.name);
        free(t.data);
        return sq_errorf(SQ_ERR_OOM, "%s: out of memory copying tensor '%s' (%zu bytes)", a->file, a->name,
                         a->t->nbytes);
    }
    if (a->t->nbytes) memcpy(t.data, a->t->data, a->t->nbytes);
    sq_status st = sq_checkpoint_add(c, &t);
    if (st != SQ_OK) sq_tensor_release(&t);
    return st;
}

/* ===== Tokenizer ===== */

static sq_status load_tokenizer(const char *dir, sq_checkpoint *c) {
    sq_status st = SQ_OK;
    char *spm = sq_path_join(dir, "tokenizer.model");
    char *hfj = sq_path_join(dir, "tokenizer.json");
    char *tcfg = sq_path_join(dir, "tokenizer_config.json");
    if (!spm || !hfj || !tcfg) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", dir);
        goto fail;
    }
    bool has_cfg = sq_file_exists(tcfg);
    if (sq_file_exists(spm)) {
        if ((st = sq_vocab_read_spm(spm, &c->vocab)) != SQ_OK) goto fail;
        if (has_cfg && (st = sq_vocab_apply_tokenizer_config(&c->vocab, tcfg)) != SQ_OK) goto fail;
        if ((st = sq_checkpoint_add_source(c, spm)) != SQ_OK) goto fail;
    } else if (sq_file_exists(hfj)) {
        if ((st = sq_vocab_read_hf_json(hfj, has_cfg ? tcfg : NULL, &c->vocab)) != SQ_OK) goto fail;
        if ((st = sq_read_file(hfj, (size_t)1 << 30, &c->tokenizer_json, NULL)) != SQ_OK) goto fail;
        if ((st = sq_checkpoint_add_source(c, hfj)) != SQ_OK) goto fail;
    } else {
        st = sq_errorf(SQ_ERR_FORMAT, "%s: no tokenizer (expected tokenizer.model or tokenizer.json)", dir);
        goto fail;
    }
    if (has_cfg && (st = sq_checkpoint_add_source(c, tcfg)) != SQ_OK) goto fail;
fail:
    free(spm);
    free(hfj);
    free(tcfg);
    return st;
}

/* ===== Import ===== */

sq_status sq_import_hf(const char *dir, sq_checkpoint *out) {
    sq_status st = SQ_OK;
    char *cfg_path = NULL, *single = NULL, *index = NULL;
    sq_safetensors **shards = NULL;
    char **shard_paths = NULL;
    int32_t n_shards = 0, n_av = 0, n_exp = 0;
    avail *av = NULL;
    sq_tensor_spec *exp = NULL;
    int32_t bos = -1, eos = -1;
    memset(out, 0, sizeof *out);
    if (!sq_is_dir(dir)) {
        st = sq_errorf(SQ_ERR_IO, "%s: not a directory", dir);
        goto fail;
    }
    cfg_path = sq_path_join(dir, "config.json");
    single = sq_path_join(dir, "model.safetensors");
    index = sq_path_join(dir, "model.safetensors.index.json");
    if (!cfg_path || !single || !index) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", dir);
        goto fail;
    }
    if (!sq_file_exists(cfg_path)) {
        st = sq_errorf(SQ_ERR_IO, "%s: no config.json (not a Hugging Face model directory?)", dir);
        goto fail;
    }
    if ((st = sq_read_file(cfg_path, JSON_MAX_BYTES, &out->config_json, NULL)) != SQ_OK) goto fail;
    if ((st = parse_config(cfg_path, out->config_json, &out->cfg, &bos, &eos)) != SQ_OK) goto fail;
    if ((st = sq_checkpoint_add_source(out, cfg_path)) != SQ_OK) goto fail;
    if (!(out->source_format = sq_strdup("hf-safetensors"))) {
        st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", dir);
        goto fail;
    }
    if ((st = load_tokenizer(dir, out)) != SQ_OK) goto fail;

    /* weights: a single file, else the sharded set */
    if (sq_file_exists(single)) {
        shards = calloc(1, sizeof *shards);
        shard_paths = calloc(1, sizeof *shard_paths);
        if (!shards || !shard_paths || !(shard_paths[0] = sq_strdup(single))) {
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", dir);
            goto fail;
        }
        n_shards = 1;
        if ((st = sq_safetensors_open(&shards[0], single)) != SQ_OK) goto fail;
        n_av = sq_safetensors_count(shards[0]);
        av = calloc((size_t)n_av + 1, sizeof *av);
        if (!av) {
            st = sq_errorf(SQ_ERR_OOM, "%s: out of memory", dir);
            goto fail;
        }
        for (int32_t i = 0; i < n_av; i++) {
            av[i].t = sq_safetensors_get(shards[0], i);
            av[i].name = av[i].t->name;
            av[i].file = shard_paths[0];
        }
    } else if (sq_file_exists(index)) {
        if ((st = open_sharded(dir, index, &shards, &shard_paths, &n_shards, &av, &n_av)) != SQ_OK) goto fail;
        if ((st = sq_checkpoint_add_source(out, index)) != SQ_OK) goto fail;
    } else {
        st = sq_errorf(SQ_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json", dir);
        goto fail;
    }
    for (int32_t j = 0; j < n_shards; j++)
        if ((st = sq_checkpoint_add_source(out, shard_paths[j])) != SQ_OK) goto fail;

    /* lm_head absent means tied, whatever the config says; tied with an lm_head present
     * means the head is ignored, as transformers does when it ties the weights. */
    avail *head = NULL;
    for (int32_t i = 0; i < n_av; i++)
        if (strcmp(av[i].name, "lm_head.weight") == 0) head = &av[i];
    if (!head) out->cfg.tied_embeddings = true;
    if (head && out->cfg.tied_embeddings) {
        sq_log(SQ_LOG_WARN, "%s: tie_word_embeddings is set: lm_head.weight is ignored", dir);
        head->used = true;
    }

    /* canonical order first, then leftovers (validation reports them) */
    if ((st = sq_config_tensors(&out->cfg, &exp, &n_exp)) != SQ_OK) goto fail;
    for (int32_t k = 0; k < n_exp; k++) {
        for (int32_t i = 0; i < n_av; i++) {
            if (av[i].used || strcmp(av[i].name, exp[k].name) != 0) continue;
            av[i].used = true;
            if ((st = copy_tensor(out, &av[i])) != SQ_OK) goto fail;
            break;
        }
    }
    for (int32_t i = 0; i < n_av; i++) {
        if (av[i].used || sq_tensor_name_ignorable(av[i].name)) continue;
        if ((st = copy_tensor(out, &av[i])) != SQ_OK) goto fail;
    }

    if (out->vocab.bos_id < 0 && bos >= 0 && bos < out->vocab.n_tokens) out->vocab.bos_id = bos;
    if (out->vocab.eos_id < 0 && eos >= 0 && eos < out->vocab.n_tokens) out->vocab.eos_id = eos;
    if ((st = sq_checkpoint_validate(out, dir)) != SQ_OK) goto fail;
fail:
    for (int32_t j = 0; j < n_shards; j++) {
        sq_safetensors_close(shards[j]);
        free(shard_paths[j]);
    }
    free(shards);
    free(shard_paths);
    free(av);
    free(exp);
    free(cfg_path);
    free(single);
    free(index);
    if (st != SQ_OK) sq_checkpoint_free(out);
    return st;
}

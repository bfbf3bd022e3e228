/* test_store.c - the HDF5 model store (core/store.c, docs/model-store.md): write -> read
 * reproduces every tensor, config field, vocabulary entry and provenance record bit for
 * bit (F32/F16/BF16, SPM and BPE vocabularies, biases, tied and untied, both RoPE
 * layouts); writing is deterministic; damaged or foreign files give one-line errors
 * naming the file and object; a failed write leaves no file behind; pruning records
 * (/sparse) round-trip and hostile ones are refused.
 */
#include <dirent.h>
#include <hdf5.h>

#include "test.h"
#include "tinymodel.h"

static char pbuf[4][1024];
static int pk;

static const char *tmp_path(const char *name) {
    char *b = pbuf[pk++ & 3];
    snprintf(b, sizeof pbuf[0], "%s/%s", sq_test_tmpdir(), name);
    return b;
}

static bool files_equal(const char *a, const char *b) {
    char *da = NULL, *db = NULL;
    size_t na = 0, nb = 0;
    bool eq = sq_read_file(a, (size_t)1 << 30, &da, &na) == SQ_OK && sq_read_file(b, (size_t)1 << 30, &db, &nb) == SQ_OK &&
              na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return eq;
}

/* No "*.tmp.*" file is left in the test directory. */
static bool no_temp_files(void) {
    DIR *d = opendir(sq_test_tmpdir());
    bool ok = true;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) ok = false;
    if (d) closedir(d);
    return ok;
}

/* Adds provenance and texts so every part of the store is exercised. */
static void decorate(sq_checkpoint *c) {
    c->config_json = sq_strdup("{\"hidden_size\": 64, \"note\": \"ünïcödé\"}");
    c->tokenizer_json = sq_strdup("{\"model\": {\"type\": \"BPE\"}}");
    c->tool_version = sq_strdup("squish 0.1.0");
    c->command_line = sq_strdup("squish-convert import tiny -o tiny.h5");
    const char *p = tmp_path("source.txt");
    FILE *fp = fopen(p, "w");
    fputs("source bytes", fp);
    fclose(fp);
    SQ_CHECK_OK(sq_checkpoint_add_source(c, p));
    SQ_CHECK_OK(sq_checkpoint_add_source(c, p));
}

/* Turns the SPM vocabulary into a BPE one with merges. */
static void make_bpe(sq_vocab *v) {
    v->kind = SQ_VOCAB_BPE;
    v->pre = SQ_PRE_QWEN2;
    v->n_merges = 3;
    v->merges = calloc(3, sizeof *v->merges);
    v->merges[0] = sq_strdup("\xC4\xA0 t");
    v->merges[1] = sq_strdup("h e");
    v->merges[2] = sq_strdup("\xC4\xA0t he");
    v->add_bos = false;
    v->bos_id = -1;
}

static void check_roundtrip(const sq_tiny_spec *s, bool bpe, const char *name) {
    sq_checkpoint a, b;
    char why[256] = "";
    SQ_CHECK_OK(sq_tiny_checkpoint(s, &a));
    if (bpe) make_bpe(&a.vocab);
    decorate(&a);
    const char *p = tmp_path(name);
    SQ_CHECK_OK(sq_store_write(p, &a));
    SQ_CHECK(sq_store_is_hdf5(p));
    SQ_CHECK_OK(sq_store_read(p, &b));
    SQ_CHECKF(sq_tiny_checkpoint_equal(&a, &b, true, why, sizeof why), "%s: %s", name, why);
    SQ_CHECK(b.source_format && strcmp(b.source_format, "tiny") == 0);
    SQ_CHECK(b.config_json && strcmp(b.config_json, a.config_json) == 0);
    SQ_CHECK(b.tokenizer_json && strcmp(b.tokenizer_json, a.tokenizer_json) == 0);
    SQ_CHECK(b.tool_version && strcmp(b.tool_version, a.tool_version) == 0);
    SQ_CHECK(b.command_line && strcmp(b.command_line, a.command_line) == 0);
    SQ_CHECK(b.n_sources == 2);
    for (int i = 0; i < b.n_sources && i < a.n_sources; i++) {
        SQ_CHECK(strcmp(a.sources[i].path, b.sources[i].path) == 0);
        SQ_CHECK(strcmp(a.sources[i].sha256, b.sources[i].sha256) == 0 && strlen(b.sources[i].sha256) == 64);
        SQ_CHECK(a.sources[i].size == b.sources[i].size && b.sources[i].size == 12);
    }
    for (int i = 0; i < b.n_tensors; i++)
        SQ_CHECK(b.tensors[i].owns_data && ((uintptr_t)b.tensors[i].data & 63) == 0);
    sq_checkpoint_free(&a);
    sq_checkpoint_free(&b);
}

SQ_TEST(roundtrip_f32) {
    sq_tiny_spec s = sq_tiny_spec_default();
    check_roundtrip(&s, false, "f32.h5");
    s.tied = true;
    s.rope_layout = SQ_ROPE_INTERLEAVED;
    s.n_tokens = 300; /* padded embedding */
    check_roundtrip(&s, true, "f32_tied_bpe.h5");
}

SQ_TEST(roundtrip_f16) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.type = SQ_TYPE_F16;
    s.arch = "qwen2";
    s.qkv_bias = true;
    s.tied = true;
    s.rope_theta = 1e6f;
    s.norm_eps = 1e-6f;
    check_roundtrip(&s, true, "f16_qwen.h5");
}

SQ_TEST(roundtrip_bf16) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.type = SQ_TYPE_BF16;
    s.qkv_bias = s.o_bias = s.mlp_bias = true;
    s.head_dim = 32; /* head_dim != dim / heads */
    s.n_kv_heads = 1;
    check_roundtrip(&s, false, "bf16_bias.h5");
    /* rope scaling fields survive too */
    sq_checkpoint a, b;
    char why[256] = "";
    s = sq_tiny_spec_default();
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    a.cfg.rope_scaling = SQ_ROPE_SCALING_LLAMA3;
    a.cfg.rope_factor = 32.0f;
    a.cfg.rope_low_freq_factor = 1.0f;
    a.cfg.rope_high_freq_factor = 4.0f;
    a.cfg.rope_orig_ctx = 8192;
    a.cfg.norm_eps = 1.2345678e-5f;
    SQ_CHECK_OK(sq_store_write(tmp_path("llama3.h5"), &a));
    SQ_CHECK_OK(sq_store_read(tmp_path("llama3.h5"), &b));
    SQ_CHECKF(sq_tiny_checkpoint_equal(&a, &b, true, why, sizeof why), "%s", why);
    SQ_CHECK(b.config_json == NULL && b.tokenizer_json == NULL && b.n_sources == 0 && b.tool_version == NULL);
    sq_checkpoint_free(&a);
    sq_checkpoint_free(&b);
}

SQ_TEST(deterministic) {
    sq_tiny_spec s = sq_tiny_spec_default();
    s.type = SQ_TYPE_F16;
    sq_checkpoint a;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    decorate(&a);
    SQ_CHECK_OK(sq_store_write(tmp_path("det1.h5"), &a));
    sleep(1); /* a timestamp would now differ */
    SQ_CHECK_OK(sq_store_write(tmp_path("det2.h5"), &a));
    SQ_CHECK(files_equal(tmp_path("det1.h5"), tmp_path("det2.h5")));
    /* overwriting an existing store in place gives the same bytes again */
    SQ_CHECK_OK(sq_store_write(tmp_path("det1.h5"), &a));
    SQ_CHECK(files_equal(tmp_path("det1.h5"), tmp_path("det2.h5")));
    /* store -> read -> store is byte-identical as well */
    sq_checkpoint b;
    SQ_CHECK_OK(sq_store_read(tmp_path("det1.h5"), &b));
    SQ_CHECK_OK(sq_store_write(tmp_path("det3.h5"), &b));
    SQ_CHECK(files_equal(tmp_path("det1.h5"), tmp_path("det3.h5")));
    SQ_CHECK(no_temp_files());
    sq_checkpoint_free(&a);
    sq_checkpoint_free(&b);
}

/* Reading `path` must fail with `code` and a one-line message containing `needle`. */
static void expect_read_fail(const char *path, sq_status code, const char *needle) {
    sq_checkpoint c;
    sq_status st = sq_store_read(path, &c);
    SQ_CHECKF(st == code, "status %d, expected %d: %s", st, code, sq_last_error());
    SQ_CHECKF(strstr(sq_last_error(), needle) != NULL, "message '%s' lacks '%s'", sq_last_error(), needle);
    SQ_CHECKF(strstr(sq_last_error(), path) != NULL, "message '%s' does not name the file", sq_last_error());
    SQ_CHECKF(strchr(sq_last_error(), '\n') == NULL, "message is not one line");
    SQ_CHECK(c.n_tensors == 0 && c.tensors == NULL && c.vocab.tokens == NULL);
}

/* Copies a file, keeping its first `keep` bytes (0: all) and overwriting bytes at patch_at. */
static void copy_file(const char *from, const char *to, size_t keep, long patch_at, const char *patch) {
    char *d = NULL;
    size_t n = 0;
    if (sq_read_file(from, (size_t)1 << 30, &d, &n) != SQ_OK) abort();
    if (keep && keep < n) n = keep;
    if (patch_at >= 0) memcpy(d + patch_at, patch, strlen(patch));
    FILE *fp = fopen(to, "wb");
    fwrite(d, 1, n, fp);
    fclose(fp);
    free(d);
}

SQ_TEST(damaged_files) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint a;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    char good[1024];
    snprintf(good, sizeof good, "%s", tmp_path("good.h5"));
    SQ_CHECK_OK(sq_store_write(good, &a));
    sq_checkpoint_free(&a);
    char *d = NULL;
    size_t n = 0;
    SQ_CHECK_OK(sq_read_file(good, (size_t)1 << 30, &d, &n));
    free(d);

    const char *p = tmp_path("trunc.h5");
    copy_file(good, p, n / 2, -1, NULL);
    expect_read_fail(p, SQ_ERR_FORMAT, "trunc.h5");
    copy_file(good, p, 100, -1, NULL);
    expect_read_fail(p, SQ_ERR_FORMAT, "trunc.h5");
    copy_file(good, p, 4, -1, NULL);
    expect_read_fail(p, SQ_ERR_FORMAT, "not an HDF5 file");
    copy_file(good, p, 0, 8, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff");
    expect_read_fail(p, SQ_ERR_FORMAT, "cannot open as HDF5");
    p = tmp_path("text.h5");
    copy_file(tmp_path("source.txt"), p, 0, -1, NULL);
    expect_read_fail(p, SQ_ERR_FORMAT, "not an HDF5 file");
    expect_read_fail(tmp_path("absent.h5"), SQ_ERR_IO, "no such file");
}

/* Edits a store with the HDF5 API to produce files that are valid HDF5 but wrong stores. */
static void h5_edit(const char *path, int what) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) abort();
    hid_t sp = H5Screate(H5S_SCALAR);
    if (what == 0) { /* format_version 3 (1: float tensors, 2: with /quant) */
        hid_t a = H5Aopen_by_name(f, "/", "format_version", H5P_DEFAULT, H5P_DEFAULT);
        int32_t v = 3;
        H5Awrite(a, H5T_NATIVE_INT32, &v);
        H5Aclose(a);
    } else if (what == 1) { /* config disagrees with the tensors */
        hid_t g = H5Gopen2(f, "/config", H5P_DEFAULT); /* (H5Aopen_by_name cannot write here in 1.10) */
        hid_t a = H5Aopen(g, "hidden_dim", H5P_DEFAULT);
        int32_t v = 100;
        H5Awrite(a, H5T_NATIVE_INT32, &v);
        H5Aclose(a);
        H5Gclose(g);
    } else if (what == 2) { /* an extra tensor */
        hsize_t dims[1] = {4};
        hid_t s1 = H5Screate_simple(1, dims, NULL);
        float z[4] = {0};
        hid_t d = H5Dcreate2(f, "/tensors/model.layers.0.extra.weight", H5T_IEEE_F32LE, s1, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, z);
        H5Dclose(d);
        H5Sclose(s1);
    } else if (what == 3) { /* a missing tensor */
        H5Ldelete(f, "/tensors/model.norm.weight", H5P_DEFAULT);
    } else if (what == 4) { /* a dtype attribute that lies */
        hid_t d = H5Dopen2(f, "/tensors/model.norm.weight", H5P_DEFAULT);
        H5Adelete(d, "dtype");
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 4);
        hid_t a = H5Acreate2(d, "dtype", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, "f16");
        H5Aclose(a);
        H5Tclose(t);
        H5Dclose(d);
    } else if (what == 5) { /* not a squish store */
        H5Adelete(f, "format");
    } else if (what == 6) { /* a tensor of the wrong element type */
        H5Ldelete(f, "/tensors/model.norm.weight", H5P_DEFAULT);
        hsize_t dims[1] = {64};
        hid_t s1 = H5Screate_simple(1, dims, NULL);
        double z[64] = {0};
        hid_t d = H5Dcreate2(f, "/tensors/model.norm.weight", H5T_IEEE_F64LE, s1, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, z);
        H5Dclose(d);
        H5Sclose(s1);
    } else if (what == 7) { /* a missing config attribute */
        H5Adelete_by_name(f, "/config", "n_heads", H5P_DEFAULT);
    }
    H5Sclose(sp);
    H5Fclose(f);
}

SQ_TEST(wrong_stores) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint a;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    char good[1024];
    snprintf(good, sizeof good, "%s", tmp_path("base.h5"));
    SQ_CHECK_OK(sq_store_write(good, &a));
    sq_checkpoint_free(&a);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    static const struct {
        sq_status code;
        const char *needle;
    } cases[] = {
        {SQ_ERR_UNSUPPORTED, "format_version 3"},
        {SQ_ERR_FORMAT, "/tensors/model.layers.0.mlp.gate_proj.weight: has shape [96, 64] but the config implies [100, 64]"},
        {SQ_ERR_FORMAT, "/tensors/model.layers.0.extra.weight: a tensor the llama architecture"},
        {SQ_ERR_FORMAT, "/tensors/model.norm.weight: missing tensor (the config implies shape [64])"},
        {SQ_ERR_FORMAT, "/tensors/model.norm.weight: dtype attribute 'f16' disagrees with the stored f32 data"},
        {SQ_ERR_FORMAT, "not a squish model store"},
        {SQ_ERR_FORMAT, "/tensors/model.norm.weight: element type is not f32, f16 or bf16"},
        {SQ_ERR_FORMAT, "/config: missing attribute 'n_heads'"},
    };
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        char name[32];
        snprintf(name, sizeof name, "edit%d.h5", i);
        const char *p = tmp_path(name);
        copy_file(good, p, 0, -1, NULL);
        h5_edit(p, i);
        expect_read_fail(p, cases[i].code, cases[i].needle);
    }
}

SQ_TEST(failed_writes) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint a;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    /* into a missing directory */
    const char *p = tmp_path("no-such-dir/model.h5");
    SQ_CHECK(sq_store_write(p, &a) == SQ_ERR_IO);
    SQ_CHECK(strstr(sq_last_error(), "no-such-dir/model.h5") != NULL);
    SQ_CHECK(strchr(sq_last_error(), '\n') == NULL);
    SQ_CHECK(!sq_file_exists(p));
    /* an invalid checkpoint is refused before anything is written */
    p = tmp_path("invalid.h5");
    a.cfg.hidden_dim = 100;
    SQ_CHECK(sq_store_write(p, &a) == SQ_ERR_FORMAT);
    SQ_CHECK(!sq_file_exists(p));
    a.cfg.hidden_dim = s.hidden_dim;
    /* the last step (rename) fails: the temp file is removed */
    const char *dir = tmp_path("isdir.h5");
    SQ_CHECK(mkdir(dir, 0755) == 0);
    SQ_CHECK(sq_store_write(dir, &a) == SQ_ERR_IO);
    SQ_CHECK(sq_is_dir(dir));
    /* ignorable tensors (rotary inv_freq buffers) are not stored */
    sq_checkpoint b, r;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &b));
    b.cfg.tied_embeddings = true;
    sq_tensor *head = sq_checkpoint_find(&b, "lm_head.weight");
    free(head->name);
    head->name = sq_strdup("model.layers.0.self_attn.rotary_emb.inv_freq");
    SQ_CHECK_OK(sq_store_write(tmp_path("skip.h5"), &b));
    SQ_CHECK_OK(sq_store_read(tmp_path("skip.h5"), &r));
    SQ_CHECK(r.n_tensors == b.n_tensors - 1);
    SQ_CHECK(sq_checkpoint_find(&r, "model.layers.0.self_attn.rotary_emb.inv_freq") == NULL);
    SQ_CHECK(no_temp_files());
    sq_checkpoint_free(&r);
    sq_checkpoint_free(&a);
    sq_checkpoint_free(&b);
}

/* Pruning records (/sparse, core/checkpoint.h sq_sparse_info) survive write -> read field
 * for field, replace by name, and hostile records are refused naming the object. */
SQ_TEST(sparse_records) {
    sq_tiny_spec s = sq_tiny_spec_default();
    sq_checkpoint a, b;
    SQ_CHECK_OK(sq_tiny_checkpoint(&s, &a));
    sq_sparse_info r1 = {.name = "model.layers.0.mlp.up_proj.weight", .method = "sparsegpt", .n = 2, .m = 4,
                         .sparsity = 0.5};
    sq_sparse_info r2 = {.name = "model.layers.1.self_attn.q_proj.weight", .method = "wanda", .sparsity = 0.1};
    SQ_CHECK_OK(sq_checkpoint_set_sparse_info(&a, &r2));
    r2.sparsity = 0.7; /* replaces, does not append */
    SQ_CHECK_OK(sq_checkpoint_set_sparse_info(&a, &r2));
    SQ_CHECK_OK(sq_checkpoint_set_sparse_info(&a, &r1));
    SQ_CHECK(a.n_sparse == 2);
    char p[1024];
    snprintf(p, sizeof p, "%s", tmp_path("sparse.h5"));
    SQ_CHECK_OK(sq_store_write(p, &a));
    SQ_CHECK_OK(sq_store_read(p, &b));
    SQ_CHECK(b.n_sparse == 2);
    const sq_sparse_info *q1 = sq_checkpoint_sparse_info(&b, r1.name), *q2 = sq_checkpoint_sparse_info(&b, r2.name);
    SQ_CHECK(q1 && strcmp(q1->method, "sparsegpt") == 0 && q1->n == 2 && q1->m == 4 && q1->sparsity == 0.5);
    SQ_CHECK(q2 && strcmp(q2->method, "wanda") == 0 && q2->n == 0 && q2->m == 0 && q2->sparsity == 0.7);
    SQ_CHECK(sq_checkpoint_sparse_info(&b, "model.norm.weight") == NULL);
    /* deterministic with records too */
    SQ_CHECK_OK(sq_store_write(tmp_path("sparse2.h5"), &b));
    SQ_CHECK(files_equal(p, tmp_path("sparse2.h5")));
    sq_checkpoint_free(&b);
    /* a record for a tensor the checkpoint lacks is refused before anything is written */
    sq_sparse_info r3 = {.name = "model.layers.9.mlp.up_proj.weight", .method = "magnitude", .sparsity = 0.5};
    SQ_CHECK_OK(sq_checkpoint_set_sparse_info(&a, &r3));
    SQ_CHECK(sq_store_write(tmp_path("sparse3.h5"), &a) == SQ_ERR_ARG);
    SQ_CHECK(strstr(sq_last_error(), "model.layers.9.mlp.up_proj.weight") != NULL);
    SQ_CHECK(!sq_file_exists(tmp_path("sparse3.h5")) && no_temp_files());
    sq_checkpoint_free(&a);
    /* hostile records */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    static const struct {
        const char *attr;
        int32_t v;
        double d;
        const char *needle;
    } bad[] = {
        {"n", 4, 0, "N:M pattern 4:4"},
        {"m", 0, 0, "N:M pattern 2:0"},
        {"sparsity", 0, 1.5, "sparsity 1.5 is not in [0, 1]"},
        {"method", 0, 0, "missing attribute 'method'"},
        {"extra", 0, 0, "/sparse/model.layers.0.mlp.extra.weight: a pruning record for a tensor the model does not have"},
    };
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        char name[32];
        snprintf(name, sizeof name, "sparse_bad%d.h5", i);
        const char *q = tmp_path(name);
        copy_file(p, q, 0, -1, NULL);
        hid_t f = H5Fopen(q, H5F_ACC_RDWR, H5P_DEFAULT);
        hid_t g = H5Gopen2(f, "/sparse/model.layers.0.mlp.up_proj.weight", H5P_DEFAULT);
        if (strcmp(bad[i].attr, "method") == 0) {
            H5Adelete(g, "method");
        } else if (strcmp(bad[i].attr, "extra") == 0) {
            hid_t e = H5Gcreate2(f, "/sparse/model.layers.0.mlp.extra.weight", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            H5Gclose(e);
        } else {
            hid_t at = H5Aopen(g, bad[i].attr, H5P_DEFAULT);
            if (bad[i].attr[0] == 's')
                H5Awrite(at, H5T_NATIVE_DOUBLE, &bad[i].d);
            else
                H5Awrite(at, H5T_NATIVE_INT32, &bad[i].v);
            H5Aclose(at);
        }
        H5Gclose(g);
        H5Fclose(f);
        expect_read_fail(q, SQ_ERR_FORMAT, bad[i].needle);
    }
}

int main(void) {
    SQ_RUN(roundtrip_f32);
    SQ_RUN(roundtrip_f16);
    SQ_RUN(roundtrip_bf16);
    SQ_RUN(deterministic);
    SQ_RUN(damaged_files);
    SQ_RUN(wrong_stores);
    SQ_RUN(failed_writes);
    SQ_RUN(sparse_records);
    return sq_test_summary();
}

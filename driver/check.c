/* check.c - `squish recipe check`: a CI gate. Compares a finished run's evaluation with a
 * baseline (an eval.json of an earlier run, or one squish-eval --json), applies the gates
 * (relative PPL increase over the baseline's PPL, mean KLD against the unquantized model),
 * prints a readable diff and writes JSON and JUnit XML (the format Jenkins, GitLab and
 * GitHub test reporters read: testsuite/testcase/failure). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cJSON.h>

#include "../core/util.h"
#include "driver.h"

static double num(const cJSON *o, const char *k) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The baseline's entry for a text: eval.json's texts[] by text_sha256 (else by index), or
 * a squish-eval JSON (whose "kld" is an object). */
static const cJSON *baseline_text(const cJSON *b, const cJSON *t, int i, double *kld) {
    const cJSON *texts = cJSON_GetObjectItemCaseSensitive(b, "texts"), *x;
    *kld = NAN;
    if (cJSON_IsArray(texts)) {
        const char *sha = str(t, "text_sha256");
        cJSON_ArrayForEach(x, texts) {
            const char *s2 = str(x, "text_sha256");
            if (sha && s2 && !strcmp(sha, s2)) return *kld = num(x, "kld"), x;
        }
        /* by position only when the baseline does not say which text it measured */
        x = cJSON_GetArrayItem(texts, i);
        if (!x || (sha && str(x, "text_sha256"))) return NULL;
        *kld = num(x, "kld");
        return x;
    }
    if (i != 0 || !isfinite(num(b, "ppl"))) return NULL;
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(b, "kld");
    if (k) *kld = num(k, "mean");
    return b;
}

static void xml(FILE *fp, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", fp);
        else if (*s == '>') fputs("&gt;", fp);
        else if (*s == '&') fputs("&amp;", fp);
        else if (*s == '"') fputs("&quot;", fp);
        else fputc(*s, fp);
    }
}

sq_status sq_recipe_check(const sq_recipe *r, const char *dir, const sq_check_opts *co, bool quiet, bool *pass) {
    *pass = false;
    bool has_p = co->has_max_ppl_increase || r->has_max_ppl_increase, has_k = co->has_max_kld || r->has_max_kld;
    double max_p = co->has_max_ppl_increase ? co->max_ppl_increase : r->max_ppl_increase;
    double max_k = co->has_max_kld ? co->max_kld : r->max_kld;
    if (!has_p && !has_k)
        return sq_errorf(SQ_ERR_ARG, "check: no gates (give --max-ppl-increase or --max-kld, or gates: in %s)", r->file);
    char *ep = sq_path_join(dir, "eval.json");
    cJSON *ev = ep ? sq_drv_load_json(ep) : NULL;
    free(ep);
    if (!ev) return sq_errorf(SQ_ERR_FORMAT, "%s: cannot read eval.json: %s", dir, sq_last_error());
    cJSON *b = sq_drv_load_json(co->baseline);
    if (!b) {
        cJSON_Delete(ev);
        return sq_errorf(SQ_ERR_ARG, "%s: cannot read the baseline: %s", co->baseline, sq_last_error());
    }
    const cJSON *texts = cJSON_GetObjectItemCaseSensitive(ev, "texts"), *t;
    if (cJSON_GetArraySize(texts) < 1) {
        cJSON_Delete(ev);
        cJSON_Delete(b);
        return sq_errorf(SQ_ERR_ARG, "check: the run in %s evaluated no text (add evaluation.texts to %s)", dir, r->file);
    }
    cJSON *out = cJSON_CreateObject(), *gates;
    cJSON_AddStringToObject(out, "recipe", r->name);
    cJSON_AddStringToObject(out, "run", dir);
    cJSON_AddStringToObject(out, "baseline", co->baseline);
    gates = cJSON_AddArrayToObject(out, "gates");
    int n = 0, failed = 0, i = 0;
    char *diff = NULL;
    size_t dlen = 0;
    FILE *fp = open_memstream(&diff, &dlen);
    if (!fp) {
        cJSON_Delete(out);
        cJSON_Delete(ev);
        cJSON_Delete(b);
        return sq_errorf(SQ_ERR_OOM, "out of memory");
    }
    fprintf(fp, "check %s (%s) against %s\n", r->name, dir, co->baseline);
    cJSON_ArrayForEach(t, texts) {
        double bk;
        const cJSON *bt = baseline_text(b, t, i, &bk);
        const char *path = str(t, "path");
        const char *nm = path && strrchr(path, '/') ? strrchr(path, '/') + 1 : path ? path : "?";
        if (!bt) {
            fprintf(fp, "  %-20s no baseline entry for this text: not gated\n", nm);
            i++;
            continue;
        }
        for (int g = 0; g < 2; g++) {
            if ((g == 0 && !has_p) || (g == 1 && !has_k)) continue;
            double before = g == 0 ? num(bt, "ppl") : bk, after = g == 0 ? num(t, "ppl") : num(t, "kld");
            double lim = g == 0 ? max_p : max_k;
            double value = g == 0 ? after / before - 1.0 : after;
            bool ok = isfinite(value) && value <= lim;
            char line[512];
            if (g == 0)
                snprintf(line, sizeof line, "%-20s PPL %10.4f -> %-10.4f %+8.3f %%  (limit %+.3f %%)  %s", nm, before, after,
                         100 * value, 100 * lim, ok ? "ok" : "FAIL");
            else if (isfinite(before))
                snprintf(line, sizeof line, "%-20s KLD %10.6f -> %-10.6f %+8.6f    (limit %.6f)  %s", nm, before, after,
                         after - before, lim, ok ? "ok" : "FAIL");
            else
                snprintf(line, sizeof line, "%-20s KLD %10s -> %-10.6f              (limit %.6f)  %s", nm, "–", after, lim,
                         ok ? "ok" : "FAIL");
            fprintf(fp, "  %s\n", line);
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "text", path ? path : "?");
            cJSON_AddStringToObject(x, "gate", g == 0 ? "max_ppl_increase" : "max_kld");
            if (isfinite(before)) cJSON_AddNumberToObject(x, "baseline", before);
            else cJSON_AddNullToObject(x, "baseline");
            if (isfinite(after)) cJSON_AddNumberToObject(x, "value", after);
            else cJSON_AddNullToObject(x, "value");
            if (g == 0 && isfinite(value)) cJSON_AddNumberToObject(x, "increase", value);
            cJSON_AddNumberToObject(x, "limit", lim);
            cJSON_AddBoolToObject(x, "pass", ok);
            cJSON_AddStringToObject(x, "message", line);
            cJSON_AddItemToArray(gates, x);
            n++;
            failed += !ok;
        }
        i++;
    }
    *pass = n > 0 && failed == 0;
    if (n == 0)
        fprintf(fp, "result: FAIL (no gate could be applied: the baseline has no entry for the run's texts)\n");
    else
        fprintf(fp, "result: %s (%d of %d gates failed)\n", *pass ? "pass" : "FAIL", failed, n);
    fclose(fp);
    cJSON_AddBoolToObject(out, "pass", *pass);
    cJSON_AddNumberToObject(out, "failed", failed);
    sq_status st = SQ_OK;
    if (co->json) {
        char *js = cJSON_Print(out);
        st = js ? sq_drv_write_text(co->json, js) : sq_errorf(SQ_ERR_OOM, "out of memory");
        free(js);
    }
    if (!st && co->junit) {
        char *xb = NULL;
        size_t xl = 0;
        FILE *xf = open_memstream(&xb, &xl);
        if (!xf) st = sq_errorf(SQ_ERR_OOM, "out of memory");
        else {
            fprintf(xf, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n<testsuite name=\"squish recipe check ");
            xml(xf, r->name);
            fprintf(xf, "\" tests=\"%d\" failures=\"%d\">\n", n ? n : 1, n ? failed : 1);
            if (n == 0) { /* nothing was compared: a failure CI must see, not an empty pass */
                fprintf(xf, "  <testcase classname=\"");
                xml(xf, r->name);
                fprintf(xf, "\" name=\"baseline\"><failure message=\"no gate could be applied: the baseline has no "
                            "entry for the run's texts\"/></testcase>\n");
            }
            const cJSON *x;
            cJSON_ArrayForEach(x, gates) {
                const char *tx = str(x, "text"), *gn = str(x, "gate"), *msg = str(x, "message");
                const char *base = tx && strrchr(tx, '/') ? strrchr(tx, '/') + 1 : tx;
                fprintf(xf, "  <testcase classname=\"");
                xml(xf, r->name);
                fprintf(xf, "\" name=\"");
                xml(xf, base ? base : "?");
                fprintf(xf, " %s\">", gn ? gn : "?");
                if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "pass"))) {
                    fprintf(xf, "<failure message=\"");
                    xml(xf, msg ? msg : "");
                    fprintf(xf, "\"/>");
                }
                fprintf(xf, "</testcase>\n");
            }
            fprintf(xf, "</testsuite>\n</testsuites>\n");
            fclose(xf);
            st = sq_drv_write_text(co->junit, xb);
            free(xb);
        }
    }
    if (!quiet || !*pass) fputs(diff, stdout);
    free(diff);
    cJSON_Delete(out);
    cJSON_Delete(ev);
    cJSON_Delete(b);
    return st;
}

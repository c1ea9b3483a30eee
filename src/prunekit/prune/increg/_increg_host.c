/* One IncReg iteration for one layer's columns, on the host, in one call.

   Why C: the step is ~25 small array operations per layer and iteration (two stable sorts, the
   running rank, the increment lookup, the crossers). As NumPy calls each costs a few µs of fixed
   overhead, several times more with the caches cold after the forward/backward; on LeNet-5 that
   was most of the pruning overhead over plain SGD. The Caffe_IncReg fork did this bookkeeping in
   host C++ too. The arithmetic is the same, operation for operation and in the same IEEE
   precision, as increg/math.py: increg_step + IncReg's NumPy path (tests/prune/test_increg_host.py
   checks bit equality), so a run gives the same numbers with or without this module. Compiled
   with -ffp-contract=off: a fused multiply-add would round differently.

   col_step(w, grad, H, reg, pruned, table, newly, n_p, step, rank_start, target_eff)
     w, grad   float32 [R*C] C-contiguous (grad written, may be None: no λ⊙w term)
     H, reg    float64 [C]  running mean rank and λ, updated in place
     pruned    bool    [C]  groups pruned before this step (read)
     table     float64 [>= max(C - num_pruned, 1)]  Δ(j) for j = 0 .. (increg/math.py: increment_table)
     newly     bool    [C]  written: groups pruned by this step
     scores    float32 or float64 [C] instead of w (w = None): the group scores themselves
   Returns (num_newly, [(group, old λ, new λ) for every group whose λ fell]).
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRUNED_RANK_OFFSET 1000000.0

/* a < b with NaN after every number (NumPy's sort order); equal keys are not "less". */
static int key_less(double a, double b) {
    if (isnan(a)) return 0;
    if (isnan(b)) return 1;
    return a < b;
}

/* Stable ascending argsort of key[0..n) into order (merge sort, tmp of n ints). */
static void argsort_stable(const double *key, Py_ssize_t *order, Py_ssize_t *tmp, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) order[i] = i;
    for (Py_ssize_t width = 1; width < n; width *= 2) {
        for (Py_ssize_t lo = 0; lo < n; lo += 2 * width) {
            Py_ssize_t mid = lo + width < n ? lo + width : n;
            Py_ssize_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            Py_ssize_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi)  /* take from the right only when strictly less */
                tmp[k++] = key_less(key[order[b]], key[order[a]]) ? order[b++] : order[a++];
            while (a < mid) tmp[k++] = order[a++];
            while (b < hi) tmp[k++] = order[b++];
        }
        memcpy(order, tmp, (size_t)n * sizeof(Py_ssize_t));
    }
}

typedef struct {
    Py_buffer w, grad, scores, h, reg, pruned, table, newly;
    int have_w, have_grad, have_scores, have_h, have_reg, have_pruned, have_table, have_newly;
} Buffers;

static void release(Buffers *b) {
    if (b->have_w) PyBuffer_Release(&b->w);
    if (b->have_grad) PyBuffer_Release(&b->grad);
    if (b->have_scores) PyBuffer_Release(&b->scores);
    if (b->have_h) PyBuffer_Release(&b->h);
    if (b->have_reg) PyBuffer_Release(&b->reg);
    if (b->have_pruned) PyBuffer_Release(&b->pruned);
    if (b->have_table) PyBuffer_Release(&b->table);
    if (b->have_newly) PyBuffer_Release(&b->newly);
}

/* Get a C-contiguous buffer of item format fmt ("f", "d", "?"), writable if asked. */
static int get(PyObject *obj, Py_buffer *view, int *have, const char *fmt, int writable,
               const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    *have = 1;
    if (strcmp(view->format, fmt) != 0) {
        PyErr_Format(PyExc_TypeError, "col_step: %s must have item format '%s' (got '%s')",
                     name, fmt, view->format);
        return -1;
    }
    return 0;
}

/* Column L1 norms of the row-major [rows, cols] float32 matrix, accumulated row after row in
   float32 (NumPy's np.add.reduce(|W|, axis=0) order), widened to double for ranking. */
static void column_l1(const float *w, Py_ssize_t rows, Py_ssize_t cols, float *acc,
                      double *out) {
    for (Py_ssize_t c = 0; c < cols; c++) acc[c] = fabsf(w[c]);
    for (Py_ssize_t r = 1; r < rows; r++) {
        const float *row = w + r * cols;
        for (Py_ssize_t c = 0; c < cols; c++) acc[c] = acc[c] + fabsf(row[c]);
    }
    for (Py_ssize_t c = 0; c < cols; c++) out[c] = (double)acc[c];
}

/* grad += float(λ)·w per column; a column pruned by this step counts as w·0 (its weights are
   zeroed before NumPy's path adds the term). */
static void add_reg_term(float *g, const float *w, const double *reg, const char *newly,
                         Py_ssize_t rows, Py_ssize_t cols) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        float *grow = g + r * cols;
        const float *wrow = w + r * cols;
        for (Py_ssize_t c = 0; c < cols; c++) {
            float wv = newly[c] ? wrow[c] * 0.0f : wrow[c];
            float p = (float)reg[c] * wv;
            grow[c] = grow[c] + p;
        }
    }
}

/* The step proper on key (scores as double, length n); see increg/math.py.increg_step. */
static PyObject *step(double *key, double *h, double *reg, const char *pruned,
                      const double *table, Py_ssize_t table_len, char *newly, Py_ssize_t n,
                      long n_p, long long step_no, long long rank_start, double target_eff) {
    Py_ssize_t *order = malloc((size_t)n * sizeof(Py_ssize_t));
    Py_ssize_t *tmp = malloc((size_t)n * sizeof(Py_ssize_t));
    Py_ssize_t *j = malloc((size_t)n * sizeof(Py_ssize_t));
    double *hn = malloc((size_t)n * sizeof(double));
    PyObject *reduced = NULL;
    if (!order || !tmp || !j || !hn) { PyErr_NoMemory(); goto done; }

    Py_ssize_t num_pruned = 0;
    for (Py_ssize_t i = 0; i < n; i++) num_pruned += pruned[i] != 0;
    Py_ssize_t n_unpruned = n - num_pruned;
    if (table_len < (n_unpruned > 1 ? n_unpruned : 1)) {
        PyErr_Format(PyExc_ValueError, "col_step: table has %zd entries, need %zd", table_len,
                     n_unpruned);
        goto done;
    }
    /* 1. rank of the scores, pruned groups first (as -inf) */
    for (Py_ssize_t i = 0; i < n; i++) if (pruned[i]) key[i] = -INFINITY;
    argsort_stable(key, order, tmp, n);
    for (Py_ssize_t k = 0; k < n; k++) hn[order[k]] = (double)k;  /* rk */
    /* 2. running mean rank of unpruned groups */
    long long m = step_no - rank_start > 1 ? step_no - rank_start : 1;
    for (Py_ssize_t i = 0; i < n; i++)
        hn[i] = pruned[i] ? h[i] : ((double)(m - 1) * h[i] + hn[i]) / (double)m;
    /* 3. importance rank j of H, pruned first (j < 0) */
    for (Py_ssize_t i = 0; i < n; i++) key[i] = pruned[i] ? -INFINITY : hn[i];
    argsort_stable(key, order, tmp, n);
    for (Py_ssize_t k = 0; k < n; k++) j[order[k]] = k - num_pruned;
    /* 4. λ ← max(λ + Δ(j), 0); 5. crossers */
    reduced = PyList_New(0);
    if (!reduced) goto done;
    long num_newly = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        newly[i] = 0;
        if (pruned[i]) continue;
        double x = reg[i] + table[j[i]];
        double nr = (x >= 0.0 || isnan(x)) ? x : 0.0;
        if (nr < reg[i]) {
            PyObject *t = Py_BuildValue("(ndd)", i, reg[i], nr);
            if (!t || PyList_Append(reduced, t) < 0) { Py_XDECREF(t); Py_CLEAR(reduced); goto done; }
            Py_DECREF(t);
        }
        reg[i] = nr;
        if (nr >= target_eff) { newly[i] = 1; num_newly++; }
    }
    if (num_newly > n_p) {  /* keep the n_p lowest j: walk unpruned groups in j order */
        long kept = 0;
        for (Py_ssize_t k = num_pruned; k < n; k++) {
            Py_ssize_t i = order[k];
            if (newly[i]) { if (kept < n_p) kept++; else newly[i] = 0; }
        }
        num_newly = n_p;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        h[i] = newly[i] ? ((double)step_no - PRUNED_RANK_OFFSET) - (reg[i] - target_eff) : hn[i];
    {
        PyObject *res = Py_BuildValue("(lN)", num_newly, reduced);
        reduced = NULL;
        free(order); free(tmp); free(j); free(hn);
        return res;
    }
done:
    free(order); free(tmp); free(j); free(hn);
    Py_XDECREF(reduced);
    return NULL;
}

static PyObject *col_step(PyObject *self, PyObject *args) {
    PyObject *w_obj, *grad_obj, *h_obj, *reg_obj, *pruned_obj, *table_obj, *newly_obj;
    PyObject *scores_obj = Py_None;
    long n_p;
    long long step_no, rank_start;
    double target_eff;
    if (!PyArg_ParseTuple(args, "OOOOOOOlLLd|O", &w_obj, &grad_obj, &h_obj, &reg_obj,
                          &pruned_obj, &table_obj, &newly_obj, &n_p, &step_no, &rank_start,
                          &target_eff, &scores_obj))
        return NULL;
    Buffers b;
    memset(&b, 0, sizeof b);
    PyObject *res = NULL;
    double *key = NULL;
    float *acc = NULL;
    if (get(h_obj, &b.h, &b.have_h, "d", 1, "H") < 0 ||
        get(reg_obj, &b.reg, &b.have_reg, "d", 1, "reg") < 0 ||
        get(pruned_obj, &b.pruned, &b.have_pruned, "?", 0, "pruned") < 0 ||
        get(table_obj, &b.table, &b.have_table, "d", 0, "table") < 0 ||
        get(newly_obj, &b.newly, &b.have_newly, "?", 1, "newly") < 0)
        goto out;
    Py_ssize_t n = b.h.len / (Py_ssize_t)sizeof(double);
    if (b.reg.len != b.h.len || b.pruned.len != n || b.newly.len != n || n == 0) {
        PyErr_SetString(PyExc_ValueError, "col_step: H, reg, pruned, newly need one entry per group");
        goto out;
    }
    if (n_p <= 0) {
        PyErr_SetString(PyExc_ValueError, "col_step: n_p must be positive");
        goto out;
    }
    key = malloc((size_t)n * sizeof(double));
    acc = malloc((size_t)n * sizeof(float));
    if (!key || !acc) { PyErr_NoMemory(); goto out; }
    Py_ssize_t rows = 0;
    if (w_obj != Py_None) {
        if (get(w_obj, &b.w, &b.have_w, "f", 0, "w") < 0) goto out;
        Py_ssize_t count = b.w.len / (Py_ssize_t)sizeof(float);
        if (count % n != 0) {
            PyErr_SetString(PyExc_ValueError, "col_step: w is not a whole number of rows");
            goto out;
        }
        rows = count / n;
        column_l1((const float *)b.w.buf, rows, n, acc, key);
    } else {
        if (PyObject_GetBuffer(scores_obj, &b.scores, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
            goto out;
        b.have_scores = 1;
        const char *f = b.scores.format;
        if (strcmp(f, "f") == 0 && b.scores.len == n * (Py_ssize_t)sizeof(float)) {
            for (Py_ssize_t i = 0; i < n; i++) key[i] = (double)((const float *)b.scores.buf)[i];
        } else if (strcmp(f, "d") == 0 && b.scores.len == n * (Py_ssize_t)sizeof(double)) {
            memcpy(key, b.scores.buf, (size_t)n * sizeof(double));
        } else {
            PyErr_SetString(PyExc_ValueError, "col_step: scores must be float32/float64 [groups]");
            goto out;
        }
    }
    if (grad_obj != Py_None) {
        if (w_obj == Py_None) {
            PyErr_SetString(PyExc_ValueError, "col_step: grad needs w");
            goto out;
        }
        if (get(grad_obj, &b.grad, &b.have_grad, "f", 1, "grad") < 0) goto out;
        if (b.grad.len != b.w.len) {
            PyErr_SetString(PyExc_ValueError, "col_step: grad and w differ in size");
            goto out;
        }
    }
    res = step(key, (double *)b.h.buf, (double *)b.reg.buf, (const char *)b.pruned.buf,
               (const double *)b.table.buf, b.table.len / (Py_ssize_t)sizeof(double),
               (char *)b.newly.buf, n, n_p, step_no, rank_start, target_eff);
    if (res && b.have_grad)
        add_reg_term((float *)b.grad.buf, (const float *)b.w.buf, (const double *)b.reg.buf,
                     (const char *)b.newly.buf, rows, n);
out:
    free(key);
    free(acc);
    release(&b);
    return res;
}

static PyMethodDef methods[] = {
    {"col_step", col_step, METH_VARARGS,
     "One IncReg step of one layer's columns (see the module source for the arguments)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_increg_host",
    "IncReg's per-iteration host step in C (same arithmetic as increg_math).", -1, methods,
};

PyMODINIT_FUNC PyInit__increg_host(void) { return PyModule_Create(&module); }

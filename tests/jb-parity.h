/* jb-parity.h: issue 8's parity criterion for a fast path (BF16 activations, q8_0 weights)
 * against the golden logits, shared by the tests of every such path.
 *
 *     struct jb_parity p;
 *     if (jb_parity_check_npy(dump "/decode_logits.npy", golden "/decode_logits.npy", 1e-2,
 *                             &p) < 0)
 *         cr_fail("%s", p.msg);
 *
 * The criterion, for logits laid out as rows (prefill positions or decode steps) of cols
 * vocabulary entries:
 *   - every |got - golden| <= rel_tol x max |golden| over the whole array, and
 *   - in every row whose golden top-2 gap (largest minus second largest) exceeds twice that
 *     row's measured max |got - golden|, got's argmax is golden's argmax (the golden greedy
 *     token). Rows closer than that may legitimately flip and are only counted.
 * (An error below half the gap cannot flip the argmax, so the second rule holds whenever the
 * first does row by row; it is checked anyway, and tokens_checked says how many rows it bound.
 * What it guards in practice: a flipped greedy token changes every later decode step's input,
 * which the first rule then catches in the following rows.)
 */
#ifndef JB_PARITY_H
#define JB_PARITY_H

#include <stddef.h>

struct jb_parity {
    double max_err;      /* max |got - golden| over the array */
    double max_golden;   /* max |golden| */
    double tol;          /* rel_tol x max_golden */
    size_t rows, tokens_checked; /* rows, and rows whose gap made their argmax binding */
    double min_gap;      /* smallest golden top-2 gap among those rows; INFINITY if none */
    char msg[512];       /* the first violation; empty when the criterion holds */
};

/* Checks got against golden, both [rows, cols] float32. Returns 0 when the criterion holds,
 * -1 (p->msg says where) when it does not. rel_tol < 0: the error is measured but not bounded
 * (only the token rule binds). */
int jb_parity_check_logits(const float *got, const float *golden, size_t rows, size_t cols,
                           double rel_tol, struct jb_parity *p);

/* The same on two .npy files of float32 logits, [T, E] or [E] (one row; any leading
 * dimensions are rows too); a load failure or a shape mismatch is a violation (-1, p->msg). */
int jb_parity_check_npy(const char *got_path, const char *golden_path, double rel_tol,
                        struct jb_parity *p);

#endif /* JB_PARITY_H */

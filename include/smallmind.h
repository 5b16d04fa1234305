/*
 * smallmind.h — the one public header of SmallMind.
 *
 * SmallMind trains and runs small GPT-style transformers on CPUs inside a fixed memory budget.
 * A model is a static dataflow graph: build it (this header's builder functions, a graph file, or a
 * template), turn it into a plan (every tensor at a fixed offset in an arena), then run the plan.
 *
 * Conventions: every fallible function returns sm_status; on failure sm_last_error() gives a message
 * naming the tensor, node, file or line involved and what to do. The library never prints, aborts or
 * exits. Handles are opaque. Tensors are small integer ids (sm_tensor) valid in the graph that made them.
 */
#ifndef SMALLMIND_H
#define SMALLMIND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SM_VERSION_MAJOR 0
#define SM_VERSION_MINOR 1
#define SM_VERSION_PATCH 0
#define SM_VERSION_STRING "0.1.0"

/* ---- status ------------------------------------------------------------------------------------ */

typedef enum sm_status {
    SM_OK = 0,
    SM_ERR_INVALID_ARG,   /* a bad argument: null handle, unknown tensor id, bad attribute */
    SM_ERR_SHAPE,         /* shapes or types do not fit the op */
    SM_ERR_NOMEM,         /* an allocation failed */
    SM_ERR_IO,            /* a file could not be read or written */
    SM_ERR_FORMAT,        /* a file is malformed, truncated, corrupt or of the wrong version */
    SM_ERR_BUDGET,        /* the plan does not fit the memory budget */
    SM_ERR_UNSUPPORTED,   /* valid, but not supported by this build or op */
    SM_ERR_STATE,         /* called in the wrong state (e.g. running before the inputs are set) */
    SM_ERR_INTERRUPTED,   /* stopped on request (e.g. SIGINT), after leaving everything consistent */
    SM_ERR_INTERNAL       /* a bug in SmallMind: please report it with the message */
} sm_status;

/* The message of the last error on this thread ("" if none). Valid until the next failing call. */
const char *sm_last_error(void);
/* A short constant name for a status ("SM_ERR_SHAPE"). */
const char *sm_status_name(sm_status s);

/* ---- types ------------------------------------------------------------------------------------- */

#define SM_MAX_DIMS 4
#define SM_MAX_INPUTS 8
#define SM_NAME_MAX 64

typedef enum sm_dtype { SM_F32 = 0, SM_F16, SM_BF16, SM_I32, SM_DTYPE_COUNT } sm_dtype;

typedef enum sm_role {
    SM_ROLE_INPUT = 0,    /* fed by the caller before each run (token ids, targets, hyperparameters) */
    SM_ROLE_PARAM,        /* a weight: persists across runs */
    SM_ROLE_ACTIVATION,   /* produced and consumed inside a run */
    SM_ROLE_OUTPUT,       /* produced by a run and kept for the caller to read */
    SM_ROLE_GRAD,         /* gradient of a parameter */
    SM_ROLE_OPTIM,        /* optimizer state (AdamW moments): persists across runs */
    SM_ROLE_KV,           /* attention key/value cache */
    SM_ROLE_COUNT
} sm_role;

/* How a parameter is initialised by sm_runtime_init_params. */
typedef enum sm_init { SM_INIT_ZEROS = 0, SM_INIT_ONES, SM_INIT_NORMAL } sm_init;

typedef int32_t sm_tensor;   /* tensor id inside one graph; SM_NO_TENSOR for "none" */
#define SM_NO_TENSOR ((sm_tensor)-1)

const char *sm_dtype_name(sm_dtype t);
size_t sm_dtype_size(sm_dtype t);
const char *sm_role_name(sm_role r);

/* ---- ops --------------------------------------------------------------------------------------- */

/* Every op of the op table, once: X(KIND, name, grad) makes SM_OP_<KIND>, the op graph files call
 * `name`, numbered by its place in this list. Graph hashes and plan files hold these numbers, so a
 * new op goes at the end and none moves. grad is GRAD for an op with a backward rule and NO_GRAD
 * for one that is not differentiated. The library builds its op enum, op table and declarations
 * from this list. The attributes each op takes are named in the table (sm_op_iattr_name); the
 * builder wrappers below set them for you. Shapes are written outermost first: [B, T, C]. */
#define SM_OP_LIST(X)                                                                                                \
    X(EMBEDDING, embedding, GRAD)          /* (ids i32 [...], table [V,C]) -> [..., C] */                            \
    X(ADD, add, GRAD)                      /* (a, b) -> a + b; b's shape equals a's trailing dims (broadcast) */     \
    X(MUL, mul, GRAD)                      /* (a, b) -> a * b; same broadcast rule as add */                         \
    X(SCALE, scale, GRAD)                  /* (a; s) -> s * a */                                                     \
    X(MATMUL, matmul, GRAD)                /* (a [..,M,K], b [..,K,N] or [K,N]; trans_a, trans_b) -> [..,M,N] */     \
    X(LINEAR, linear, GRAD)                /* (x [..,K], w [N,K], b [N]?) -> x·wᵀ + b [..,N] */                      \
    X(LAYERNORM, layernorm, GRAD)          /* (x [..,C], w [C], b [C]; eps) */                                       \
    X(RMSNORM, rmsnorm, GRAD)              /* (x [..,C], w [C]; eps) */                                              \
    X(GELU, gelu, GRAD)                    /* tanh approximation */                                                  \
    X(SILU, silu, GRAD)                                                                                              \
    X(SOFTMAX, softmax, GRAD)              /* along the last dim */                                                  \
    X(ATTENTION, attention, GRAD)          /* (qkv [B,T,3C]; n_head, span) -> [B,T,C], causal; span>0 = sliding      \
                                              window */                                                              \
    X(ROPE, rope, GRAD)                    /* (qkv [B,T,3C]; n_head, base, inverse) rotary positions on q, k */      \
    X(RESHAPE, reshape, GRAD)              /* (x; d0..d3) view with a new shape of the same element count */         \
    X(PERMUTE, permute, GRAD)              /* (x; p0..p3) copy with permuted dims */                                 \
    X(SLICE, slice, GRAD)                  /* (x; axis, start, len) copy of a range along one axis */                \
    X(CONCAT, concat, GRAD)                /* (x1..xn; axis) */                                                      \
    X(SUM, sum, GRAD)                      /* (x; axis) axis = -1 sums everything to [1] */                          \
    X(MEAN, mean, GRAD)                    /* (x; axis) */                                                           \
    X(CROSS_ENTROPY, cross_entropy, GRAD)  /* (logits [..,V], targets i32 [..]) -> [1] mean loss, softmax fused */   \
    X(CAST, cast, GRAD)                    /* (x; dtype) storage type conversion */                                  \
    /* -- appended by autodiff and the optimizer (graph/autodiff.c, graph/optimizer.c) */                            \
    X(FILL, fill, NO_GRAD)                 /* (; d0..d3; value) -> f32 [d0..d3] every element = value (no inputs) */ \
    X(SUM_TO, sum_to, NO_GRAD)             /* (x [..., S]; ndim) -> [S]: sum over the leading dims, keeping the      \
                                              last ndim */                                                           \
    X(EXPAND, expand, NO_GRAD)             /* (x; d0..d3, axis; s) -> [d0..d3]: s * x repeated along axis (-1: x     \
                                              is [1], repeated everywhere); x holds the output with that axis        \
                                              removed */                                                             \
    X(PAD, pad, NO_GRAD)                   /* (x; axis, start, total) -> x at start.. along axis, zeros elsewhere    \
                                              (slice's adjoint) */                                                   \
    X(EMBEDDING_BWD, embedding_bwd, NO_GRAD) /* (ids i32 [...], gy [..., C]; vocab) -> [vocab, C] scatter-add of     \
                                              gy rows */                                                             \
    X(NORM_STATS, norm_stats, NO_GRAD)     /* (x [..,C]; rms; eps) -> [..,2] per row (mean, rstd); rms = 1: mean     \
                                              is 0 */                                                                \
    X(NORM_BWD_X, norm_bwd_x, NO_GRAD)     /* (x [..,C], w [C], gy [..,C], stats [..,2]; rms) -> dx [..,C] */        \
    X(NORM_BWD_W, norm_bwd_w, NO_GRAD)     /* (x [..,C], gy [..,C], stats [..,2]; rms) -> dw [C] = sum over rows     \
                                              gy*xhat */                                                             \
    X(GELU_BWD, gelu_bwd, NO_GRAD)         /* (x, gy) -> gy * gelu'(x) */                                            \
    X(SILU_BWD, silu_bwd, NO_GRAD)         /* (x, gy) -> gy * silu'(x) */                                            \
    X(SOFTMAX_BWD, softmax_bwd, NO_GRAD)   /* (y, gy) -> y * (gy - sum(gy * y)) along the last dim; y = softmax      \
                                              output */                                                              \
    X(ATTENTION_BWD, attention_bwd, NO_GRAD) /* (qkv [B,T,3C], gy [B,T,C]; n_head, span) -> dqkv [B,T,3C] */         \
    X(CROSS_ENTROPY_BWD, cross_entropy_bwd, NO_GRAD) /* (logits [..,V], targets i32 [..], gy [1]) -> dlogits         \
                                              [..,V] */                                                              \
    X(SUMSQ, sumsq, NO_GRAD)               /* (x1..xn) -> [1] sum of the squares of every element (fixed order) */   \
    X(ADAMW, adamw, NO_GRAD)               /* (param, grad, m, v, hparams [8], sumsq [1]?; decay) -> [1] token:      \
                                              updates param, m and v IN PLACE (see sm_graph_adamw) */                \
    /* -- added later: at the end, so that no number moves */                                                        \
    X(LM_HEAD_CE, lm_head_ce, GRAD)        /* (x [..,C], w [V,C], targets i32 [..]) -> [1]:                          \
                                              cross_entropy(linear(x, w), targets) fused, the logits made one        \
                                              chunk of rows at a time (no [..,V] tensor) */                          \
    X(LM_HEAD_CE_BWD, lm_head_ce_bwd, NO_GRAD) /* (x, w, targets, gy [1]) -> [V + R, C]: dw rows, then dx rows       \
                                              (R = rows of x) */                                                     \
    X(ROWS, rows, GRAD)                    /* (x [N,..]; start, len) -> [len,..]: rows start.. of x as a view (no    \
                                              copy) */                                                               \
    X(FOUND_INF, found_inf, NO_GRAD)       /* (x1..xn; acc) -> [1]: 1 if an element of an x is +-Inf or NaN, else    \
                                              0; acc = 1: x1 is a running flag [1] (loss scaling, sm_graph_adamw) */   \
    X(KV_ATTENTION, kv_attention, NO_GRAD) /* (qkv [B,T,3C], k_cache [B,P,C], v_cache [B,P,C], positions i32 [B,T];   \
                                              n_head, span, sink, ring) -> [B,T,C]: writes the new rows' k and v     \
                                              into the caches (IN PLACE) at positions[b,0].., then attends over the  \
                                              cached keys (see sm_kv_attention) */

#define SM_OP_LIST_KIND(KIND, name, grad) SM_OP_##KIND,
typedef enum sm_op_kind { SM_OP_LIST(SM_OP_LIST_KIND) SM_OP_COUNT } sm_op_kind;
#undef SM_OP_LIST_KIND

/* Attribute values of a node: the op table names what each slot means for an op. */
#define SM_MAX_IATTRS 6
#define SM_MAX_FATTRS 2
typedef struct sm_attrs {
    int64_t i[SM_MAX_IATTRS];
    float f[SM_MAX_FATTRS];
} sm_attrs;

const char *sm_op_name(sm_op_kind op);
/* Looks an op up by name ("layernorm"); SM_ERR_INVALID_ARG if there is none. */
sm_status sm_op_lookup(const char *name, sm_op_kind *out);
/* Name of integer attribute slot `slot` of `op` (NULL if unused), and of float slot `slot`. */
const char *sm_op_iattr_name(sm_op_kind op, int slot);
const char *sm_op_fattr_name(sm_op_kind op, int slot);
/* The attribute defaults of an op (what the table says when an attribute is not given). */
sm_attrs sm_op_default_attrs(sm_op_kind op);

/* ---- graph ------------------------------------------------------------------------------------- */

typedef struct sm_graph sm_graph;

sm_status sm_graph_create(sm_graph **out);
void sm_graph_free(sm_graph *g);

/* Leaves. Names are unique within a graph (up to SM_NAME_MAX-1 bytes). */
sm_status sm_graph_input(sm_graph *g, const char *name, sm_dtype dtype, int ndim, const int64_t *shape,
                         sm_tensor *out);
sm_status sm_graph_param(sm_graph *g, const char *name, sm_dtype dtype, int ndim, const int64_t *shape,
                         sm_init init, float init_std, sm_tensor *out);

/* The generic node builder: every op, by kind, with explicit attributes. name may be NULL (a name
 * like "gelu_12" is made). Shape errors name the node and both shapes. */
sm_status sm_graph_op(sm_graph *g, sm_op_kind op, const sm_tensor *inputs, int n_inputs,
                      const sm_attrs *attrs, const char *name, sm_tensor *out);

/* A KV-cache tensor (role SM_ROLE_KV): it persists across runs, like a weight, in the plan's KV
 * arena (RAM or a file, see sm_session); it starts zeroed. */
sm_status sm_graph_kv(sm_graph *g, const char *name, sm_dtype dtype, int ndim, const int64_t *shape, sm_tensor *out);

/* Marks t as a graph output (kept after a run) / as the scalar loss of a training graph. */
sm_status sm_graph_mark_output(sm_graph *g, sm_tensor t);
sm_status sm_graph_set_loss(sm_graph *g, sm_tensor t);
sm_status sm_graph_set_trainable(sm_graph *g, sm_tensor param, int trainable);
/* Marks the output t of a forward node as a block boundary for recomputation (sm_recompute_policy):
 * when any tensor of a graph is marked, the marked ones are its boundaries; otherwise the planner
 * finds them itself. Graph files say `checkpoint NAME`. */
sm_status sm_graph_checkpoint(sm_graph *g, sm_tensor t);

/* Queries. */
int sm_graph_tensor_count(const sm_graph *g);
int sm_graph_node_count(const sm_graph *g);
sm_status sm_graph_find(const sm_graph *g, const char *name, sm_tensor *out);
sm_status sm_tensor_info(const sm_graph *g, sm_tensor t, const char **name, sm_dtype *dtype, sm_role *role,
                         int *ndim, int64_t shape[SM_MAX_DIMS]);
int64_t sm_tensor_numel(const sm_graph *g, sm_tensor t);   /* -1 for a bad id */
sm_tensor sm_graph_loss(const sm_graph *g);                 /* SM_NO_TENSOR if none */

/* Builder wrappers: one per op, same rules as sm_graph_op. name may be NULL. */
sm_status sm_embedding(sm_graph *g, sm_tensor ids, sm_tensor table, const char *name, sm_tensor *out);
sm_status sm_add(sm_graph *g, sm_tensor a, sm_tensor b, const char *name, sm_tensor *out);
sm_status sm_mul(sm_graph *g, sm_tensor a, sm_tensor b, const char *name, sm_tensor *out);
sm_status sm_scale(sm_graph *g, sm_tensor a, float s, const char *name, sm_tensor *out);
sm_status sm_matmul(sm_graph *g, sm_tensor a, sm_tensor b, int trans_a, int trans_b, const char *name,
                    sm_tensor *out);
sm_status sm_linear(sm_graph *g, sm_tensor x, sm_tensor w, sm_tensor b /* or SM_NO_TENSOR */,
                    const char *name, sm_tensor *out);
sm_status sm_layernorm(sm_graph *g, sm_tensor x, sm_tensor w, sm_tensor b, float eps, const char *name,
                       sm_tensor *out);
sm_status sm_rmsnorm(sm_graph *g, sm_tensor x, sm_tensor w, float eps, const char *name, sm_tensor *out);
sm_status sm_gelu(sm_graph *g, sm_tensor x, const char *name, sm_tensor *out);
sm_status sm_silu(sm_graph *g, sm_tensor x, const char *name, sm_tensor *out);
sm_status sm_softmax(sm_graph *g, sm_tensor x, const char *name, sm_tensor *out);
sm_status sm_attention(sm_graph *g, sm_tensor qkv, int n_head, int span, const char *name, sm_tensor *out);
sm_status sm_rope(sm_graph *g, sm_tensor qkv, int n_head, float base, const char *name, sm_tensor *out);
sm_status sm_reshape(sm_graph *g, sm_tensor x, int ndim, const int64_t *shape, const char *name,
                     sm_tensor *out);
sm_status sm_permute(sm_graph *g, sm_tensor x, const int *perm, const char *name, sm_tensor *out);
sm_status sm_transpose(sm_graph *g, sm_tensor x, int dim0, int dim1, const char *name, sm_tensor *out);
sm_status sm_slice(sm_graph *g, sm_tensor x, int axis, int64_t start, int64_t len, const char *name,
                   sm_tensor *out);
sm_status sm_concat(sm_graph *g, const sm_tensor *xs, int n, int axis, const char *name, sm_tensor *out);
sm_status sm_sum(sm_graph *g, sm_tensor x, int axis, const char *name, sm_tensor *out);
sm_status sm_mean(sm_graph *g, sm_tensor x, int axis, const char *name, sm_tensor *out);
sm_status sm_cross_entropy(sm_graph *g, sm_tensor logits, sm_tensor targets, const char *name,
                           sm_tensor *out);
sm_status sm_cast(sm_graph *g, sm_tensor x, sm_dtype to, const char *name, sm_tensor *out);
/* The LM head and its loss in one node: cross_entropy(linear(x, w), targets) (x [..,C], w [V,C], no
 * bias) with the same loss and gradients bit for bit, but the [..,V] logits never exist whole: they are
 * made one chunk of rows at a time, and again in the backward. Use it for training at long contexts. */
sm_status sm_lm_head_ce(sm_graph *g, sm_tensor x, sm_tensor w, sm_tensor targets, const char *name,
                        sm_tensor *out);

/* How a KV cache is laid out and what a query sees (the kv_attention op's attributes). */
typedef struct sm_kv_layout {
    int n_head;           /* H */
    int span;             /* 0: every earlier key (causal); > 0: the last span keys (a sliding window) */
    int sink;             /* ring only: positions 0..sink-1 stay visible to every query (StreamingLLM) */
    int ring;             /* 0: position p is cache row p (P rows bound the positions); 1: a ring for
                             span > 0: rows 0..sink-1 hold the sinks, the later positions cycle through
                             the other P - sink rows (P >= sink + span + T - 1), so the positions are
                             unbounded in O(span + sink) memory */
} sm_kv_layout;
/* Attention of the new rows qkv [B,T,3C] against a KV cache: writes their k and v into k_cache and
 * v_cache (KV tensors [B,P,C], C = heads x head_dim) at positions[b,0] .. positions[b,0]+T-1, then
 * each new query attends over the cached keys it sees -> [B,T,C]. positions: i32 [B,T], consecutive
 * in each row (the position embedding may read the same tensor). Bitwise the attention op's output
 * for the same rows of the full sequence with the same span (and sink = 0). A linear cache whose
 * positions[b,0] + T exceeds P writes nothing and gives NaN rows (check before running). */
sm_status sm_kv_attention(sm_graph *g, sm_tensor qkv, sm_tensor k_cache, sm_tensor v_cache, sm_tensor positions,
                          const sm_kv_layout *layout, const char *name, sm_tensor *out);

/* ---- graph files ------------------------------------------------------------------------------- */

/* Graph files describe a model in text (docs/graph-format.md). Loading instantiates the file with its
 * parameters, each overridable by a define "KEY=VALUE" (a define naming no parameter is an error). On
 * failure sm_last_error() holds "file:line:col: error: ..." with the source line and a caret. */
sm_status sm_graph_load_file(const char *path, const char *const *defines, int n_defines, sm_graph **out);
/* The same from text in memory; name appears in messages (NULL: "<string>"). */
sm_status sm_graph_load_string(const char *text, const char *name, const char *const *defines, int n_defines,
                               sm_graph **out);
/* The canonical form of any graph: no parameters or repeats, concrete shapes, one tensor per line in
 * id order; loading it gives the same graph. *out_text is malloc'd: release it with free(). */
sm_status sm_graph_print(const sm_graph *g, char **out_text);
/* Writes the canonical form atomically, with a checksum line the loader verifies. */
sm_status sm_graph_save_file(const sm_graph *g, const char *path);
/* The graph's identity: XXH3-64 of its canonical form (0 if it cannot be printed). Unlike
 * sm_graph_hash (structure only) it covers everything the text does, parameter inits included. */
uint64_t sm_graph_identity(const sm_graph *g);

/* ---- training ---------------------------------------------------------------------------------- */

/* Appends the backward graph of the scalar f32 `loss` (usually sm_graph_loss(g)): the seed
 * dloss/dloss = 1 is a "fill" node, every node the loss depends on gets its op's backward rule, in
 * reverse insertion order, and a tensor used more than once gets the sum of its gradients (added in
 * that same fixed order, so results are deterministic). Every trainable parameter the loss depends on
 * gets a gradient tensor named "grad.<param>" with role SM_ROLE_GRAD (sm_graph_grad); parameters
 * marked not trainable, parameters the loss does not depend on, inputs and i32 tensors get none.
 * Intermediate gradients are ordinary activations. Call it once per graph, after the forward. */
sm_status sm_graph_backward(sm_graph *g, sm_tensor loss);
/* sm_graph_backward for loss scaling (fp16 training): the seed dloss/dloss is not 1 but the value of a
 * new input "opt.loss_scale" (f32, the loss's shape, one value; *scale, which may be NULL) that the
 * host sets before every run, so every gradient comes out multiplied by the scale S. The loss itself
 * is not scaled. sm_graph_adamw on such a graph checks the gradients for overflow and unscales them
 * (see there); sm_loss_scaler below chooses S. */
sm_status sm_graph_backward_scaled(sm_graph *g, sm_tensor loss, sm_tensor *scale);
/* The gradient of parameter p once sm_graph_backward has run, else SM_NO_TENSOR. */
sm_tensor sm_graph_grad(const sm_graph *g, sm_tensor p);

/* AdamW (Loshchilov & Hutter) with bias correction, decoupled weight decay, optional clipping of the
 * global gradient L2 norm, linear warmup and cosine decay of the learning rate. */
typedef struct sm_adamw_config {
    float lr;             /* peak learning rate (reached at the end of warmup) */
    float min_lr;         /* the cosine decays to this at total_steps and stays there */
    int64_t warmup_steps; /* linear warmup from lr/warmup_steps to lr over this many steps (0: none) */
    int64_t total_steps;  /* end of the cosine decay; 0: no decay (constant lr after warmup) */
    float beta1, beta2, eps;
    float weight_decay;   /* decoupled: p -= lr*wd*p, only for parameters of 2+ dims (see below) */
    float grad_clip;      /* clip the global gradient L2 norm to this; 0 = no clipping */
} sm_adamw_config;

/* Per-step values the update nodes read from the "opt.hparams" input, in this order. */
typedef enum sm_adamw_hparam {
    SM_ADAMW_LR = 0,      /* learning rate of this step (schedule applied) */
    SM_ADAMW_BETA1,
    SM_ADAMW_BETA2,
    SM_ADAMW_EPS,
    SM_ADAMW_WD,          /* weight decay */
    SM_ADAMW_BC1,         /* 1 / (1 - beta1^t), t = step + 1 */
    SM_ADAMW_BC2,         /* 1 / (1 - beta2^t) */
    SM_ADAMW_CLIP,        /* max global norm; <= 0: no clipping this step */
    SM_ADAMW_HPARAMS      /* count */
} sm_adamw_hparam;

typedef struct sm_adamw_tensors {
    sm_tensor hparams;    /* input f32 [SM_ADAMW_HPARAMS]: set before every run (sm_adamw_hparams) */
    sm_tensor grad_sumsq; /* output f32 [1]: sum of squares of all gradients before clipping (its
                             sqrt is the global norm); SM_NO_TENSOR when grad_clip was 0 */
    int n_params;         /* parameters updated */
    sm_tensor loss_scale; /* input f32 [1] of sm_graph_backward_scaled: the scale S; else SM_NO_TENSOR */
    sm_tensor found_inf;  /* with loss_scale: output f32 [1], 1 when some gradient element was +-Inf or
                             NaN in this run, or (with clipping) their f32 sum of squares overflowed:
                             the step was skipped, no parameter or moment changed; else 0.
                             SM_NO_TENSOR without loss scaling. grad_sumsq is then that of the
                             scaled gradients: the norm is sqrt(grad_sumsq) / S */
} sm_adamw_tensors;

/* GPT-2 / nanoGPT defaults: lr 6e-4, min_lr 6e-5, betas 0.9/0.95, eps 1e-8, wd 0.1, clip 1.0, no
 * warmup or decay (set warmup_steps and total_steps for a schedule). */
void sm_adamw_config_default(sm_adamw_config *c);
/* Appends the optimizer step after sm_graph_backward: with grad_clip > 0 the sum of squares of all
 * gradients (fixed order), then per parameter with a gradient, in tensor order, one "adamw" node that
 * updates the parameter and its moments "adam.m.<p>" and "adam.v.<p>" (role SM_ROLE_OPTIM, zero at
 * init) in place. Weight decay applies to parameters of 2 or more dims (matmul weights, embeddings),
 * not to 1-D ones (biases, norm gains), as GPT-2 training does.
 * After sm_graph_backward_scaled it also appends "opt.found_inf" (found_inf nodes over the sum of
 * squares and every gradient, in tensor order), and the update nodes unscale: the clipped norm is that of grad / S, the
 * moments see grad / S, and when found_inf is 1 no node changes anything (the step is skipped; give
 * the next step's hparams with sm_adamw_hparams_skipped). With S = 1 the results are bitwise those
 * of the unscaled graph. */
sm_status sm_graph_adamw(sm_graph *g, const sm_adamw_config *cfg, sm_adamw_tensors *out);
/* The "opt.hparams" values for update number `step` (0 for the first update): learning rate from
 * linear warmup then cosine decay to min_lr, bias corrections for t = step + 1. */
sm_status sm_adamw_hparams(const sm_adamw_config *cfg, int64_t step, float out[SM_ADAMW_HPARAMS]);
/* The same for step number `step` of a run whose loss scaling skipped `skipped` (<= step) of the
 * steps before it: the learning rate follows the step number, the bias corrections the updates
 * actually applied (t = step - skipped + 1), as PyTorch's Adam under GradScaler does (its scheduler
 * steps every iteration, its step count only when optimizer.step() runs). skipped = 0 is
 * sm_adamw_hparams. */
sm_status sm_adamw_hparams_skipped(const sm_adamw_config *cfg, int64_t step, int64_t skipped,
                                   float out[SM_ADAMW_HPARAMS]);
/* Learning rate of update number `step` alone. */
float sm_adamw_lr(const sm_adamw_config *cfg, int64_t step);

/* Loss scaling for fp16 training, with PyTorch GradScaler's rules: start at init_scale (2^16); after
 * a step whose gradients overflowed (found_inf) multiply the scale by backoff_factor (0.5, never
 * below min_scale) and start counting again; after growth_interval (2000) consecutive steps without
 * overflow multiply it by growth_factor (2) and start counting again. An overflowed step is skipped
 * (sm_graph_adamw). The floor min_scale is 1 (DeepSpeed's and Megatron-LM's default; PyTorch has
 * none): the scale exists to lift small gradients above f16's underflow, and a scale below 1 would
 * push them back down, so a run that still overflows at 1 has gradients that are really not finite
 * (a divergence) rather than a scale that is too high. bf16 needs no scaling: it has f32's 8-bit
 * exponent, so what f32 holds without underflow bf16 holds too (docs/mixed-precision.md).
 * The struct is plain data: a checkpoint saves and restores its fields (sm_loss_scaler_check a
 * restored one). */
typedef enum sm_loss_scale_mode {
    SM_LOSS_SCALE_OFF = 0,    /* S = 1 always; nothing is skipped by the scaler's decision */
    SM_LOSS_SCALE_FIXED,      /* S = init_scale always; overflowed steps are skipped */
    SM_LOSS_SCALE_DYNAMIC     /* the rules above */
} sm_loss_scale_mode;

typedef struct sm_loss_scaler {
    sm_loss_scale_mode mode;
    float scale;              /* S of the next step */
    float growth_factor;      /* > 1 */
    float backoff_factor;     /* in (0, 1) */
    int64_t growth_interval;  /* >= 1 */
    float min_scale;          /* the floor, > 0 */
    int64_t growth_tracker;   /* consecutive steps without overflow since the scale last changed */
    int64_t skipped;          /* steps skipped so far (overflowed), for sm_adamw_hparams_skipped */
} sm_loss_scaler;

/* mode with PyTorch's defaults: init scale 65536 (1 for OFF), growth 2, backoff 0.5, interval 2000,
 * min_scale 1, counters 0. */
void sm_loss_scaler_init(sm_loss_scaler *s, sm_loss_scale_mode mode);
/* SM_ERR_INVALID_ARG naming the field when a setting or counter is out of range (scale finite and in
 * [min_scale, FLT_MAX], min_scale finite and > 0, growth > 1, backoff in (0, 1), interval >= 1,
 * counters >= 0, tracker < interval; OFF: scale 1). */
sm_status sm_loss_scaler_check(const sm_loss_scaler *s);
/* After a step: found_inf is the graph's "opt.found_inf" (nonzero: that step was skipped). Counts the
 * skip, then applies the rules of the mode. */
sm_status sm_loss_scaler_update(sm_loss_scaler *s, int found_inf);
/* The mode auto picks for a model whose activations and gradients are stored as `storage`: dynamic
 * for f16 (5 exponent bits: small gradients underflow), off for f32 and bf16. */
sm_loss_scale_mode sm_loss_scale_auto(sm_dtype storage);

/* ---- plan -------------------------------------------------------------------------------------- */

typedef struct sm_plan sm_plan;

typedef enum sm_plan_strategy {
    SM_PLAN_NAIVE = 0,    /* every tensor in its own range, nothing reused: the baseline */
    SM_PLAN_PACKED        /* lifetimes + offset assignment: the smallest arenas found */
} sm_plan_strategy;

/* Recomputation (gradient checkpointing): which forward activations that the backward reads are
 * kept from the forward, and which are freed after their forward use and recomputed (by clones of
 * their forward nodes, placed right before their first backward use). Results are bitwise the same
 * under every policy: a recomputed tensor is the same kernel run on the same inputs.
 * Block boundaries are the forward tensors after which the rest of the forward needs nothing older
 * but weights and inputs (in a GPT: the residual stream after each attention and MLP add), or the
 * tensors marked with sm_graph_checkpoint. */
typedef enum sm_recompute_kind {
    SM_RECOMPUTE_NONE = 0,    /* keep everything (no extra FLOPs) */
    SM_RECOMPUTE_EVERY,       /* keep every K-th boundary (K = every; 1 keeps every boundary), recompute
                                 the rest */
    SM_RECOMPUTE_SQRT,        /* EVERY with K = ceil(sqrt(number of boundaries)) (Chen et al. 2016) */
    SM_RECOMPUTE_SELECTIVE,   /* keep the boundaries and the outputs of costly ops (matmul, attention);
                                 recompute cheap ones (elementwise, norms, GELU/SiLU, softmax) */
    SM_RECOMPUTE_BUDGET       /* the least extra FLOPs that fits `budget` bytes (0: the plan options'
                                 budget, else the machine's `auto` budget) */
} sm_recompute_kind;

typedef struct sm_recompute_policy {
    sm_recompute_kind kind;
    int every;            /* K for SM_RECOMPUTE_EVERY (>= 1) */
    uint64_t budget;      /* bytes for SM_RECOMPUTE_BUDGET; 0 = auto */
} sm_recompute_policy;

/* Parses "none", "every:K", "sqrt", "selective", "budget:BYTES" (sm_parse_bytes) or "auto". */
sm_status sm_recompute_parse(const char *text, sm_recompute_policy *out);
/* The policy as text ("every:3", "budget:8.00 GiB", "auto") into buf; returns buf. */
const char *sm_recompute_str(const sm_recompute_policy *r, char *buf, size_t cap);

/* Precision: the storage type the precision pass gives the tensors that may be half precision
 * (docs/mixed-precision.md). Training: the activations saved for the backward are stored in the
 * 16-bit type; master weights, optimizer state, gradients, the loss and every statistic or
 * reduction (norm statistics, sums) stay f32. Inference (a graph without gradients): the weights that
 * only 16-bit-reading kernels use (matmul/linear weights, embedding tables) are stored in the 16-bit
 * type; the runtime converts at its boundary: sm_runtime_set/get take and give f32 for them,
 * sm_runtime_init_params rounds, and sm_runtime_data refuses them (SM_ERR_UNSUPPORTED). Kernels
 * compute in f32, except that under BF16 the products of matmul, linear and lm_head_ce are bf16
 * (operands rounded while packing, f32 accumulation; AVX-512 BF16 where the CPU has it, else a
 * portable kernel with the same bits); a cast node is inserted where a kernel cannot read the stored
 * type.
 * SM_PRECISION_FP32 leaves the graph exactly as it is (bitwise today's results). */
typedef enum sm_precision {
    SM_PRECISION_FP32 = 0,
    SM_PRECISION_BF16,
    SM_PRECISION_FP16,
    SM_PRECISION_COUNT
} sm_precision;

/* Parses "fp32" (also "f32"), "bf16" or "fp16" (also "f16"). */
sm_status sm_precision_parse(const char *text, sm_precision *out);
/* "fp32", "bf16", "fp16" ("?" for anything else). */
const char *sm_precision_name(sm_precision p);
/* The storage type a policy gives half-precision tensors: f32, bf16 or f16. */
sm_dtype sm_precision_dtype(sm_precision p);

typedef struct sm_plan_options {
    sm_plan_strategy strategy;
    int n_threads;        /* threads the plan sizes per-thread workspace for; 0 = OpenMP's default */
    uint64_t budget;      /* bytes; 0 = no budget */
    sm_recompute_policy recompute;   /* default: none */
    sm_precision precision;          /* default: fp32 */
} sm_plan_options;

void sm_plan_options_default(sm_plan_options *o);
/* Plans g: copies it into a plan-owned lowered graph, then runs the passes in this fixed order —
 * order, recompute, precision, placement, lifetimes, in-place, offsets — each recorded in the plan
 * (sm_plan_pass_log). Every tensor id of g stays valid in the lowered graph. */
sm_status sm_plan_create(const sm_graph *g, const sm_plan_options *opts, sm_plan **out);
/* The lowered graph the plan runs: g's tensors and nodes (same ids) plus what the passes appended
 * (recompute clones). Owned by the plan. */
const sm_graph *sm_plan_graph(const sm_plan *p);
/* What the passes did, one line each, in pass order (NULL past the last). */
const char *sm_plan_pass_log(const sm_plan *p, int pass);

/* What the recompute pass decided. */
typedef struct sm_plan_recompute_info {
    sm_recompute_policy asked;   /* the policy of the options */
    sm_recompute_kind kind;      /* what was applied: NONE, EVERY or SELECTIVE (BUDGET and SQRT resolve
                                    to one of these) */
    int every;                   /* K applied (EVERY) */
    int n_boundaries;            /* block boundaries found or marked */
    int n_kept;                  /* boundaries kept */
    int n_recomputed;            /* tensors recomputed (clones appended) */
    double extra_flops;          /* FLOPs of the clones, per run */
    double flops;                /* FLOPs of one run, clones included */
    uint64_t act_none;           /* activation arena without recompute (0 when not planned: policy none) */
    uint64_t act;                /* activation arena of this plan */
} sm_plan_recompute_info;
sm_status sm_plan_recompute(const sm_plan *p, sm_plan_recompute_info *out);

/* What the precision pass decided, and the storage it led to. */
typedef struct sm_plan_precision_info {
    sm_precision policy;                  /* the options' policy */
    int n_half;                           /* tensors of the user's graph stored in 16 bits (training: saved
                                             activations, by a cast copy; inference: weights) */
    int n_cast;                           /* cast nodes the pass inserted (to 16 bits and back) */
    int n_stored[SM_DTYPE_COUNT];         /* tensors of the lowered graph stored in each type */
    uint64_t n_params;                    /* parameter elements */
    uint64_t param_bytes;                 /* bytes of the parameters' storage (unaligned sum) */
    double bytes_per_param;               /* param_bytes / n_params (0 without parameters) */
    double state_bytes_per_param;         /* (weights + gradients + optimizer arenas) / n_params */
} sm_plan_precision_info;
sm_status sm_plan_precision(const sm_plan *p, sm_plan_precision_info *out);
/* The source tensor that t recomputes, or SM_NO_TENSOR if t is not a recompute clone. */
sm_tensor sm_plan_recomputes(const sm_plan *p, sm_tensor t);
void sm_plan_free(sm_plan *p);
uint64_t sm_plan_total_bytes(const sm_plan *p);   /* sum of all arena sizes */
double sm_plan_flops(const sm_plan *p);           /* FLOPs of one run */

/* ---- runtime ----------------------------------------------------------------------------------- */

typedef struct sm_runtime sm_runtime;

/* Allocates the arenas the plan names; the plan must have been made for this graph. The graph and
 * plan must outlive the runtime. */
sm_status sm_runtime_create(const sm_graph *g, const sm_plan *p, sm_runtime **out);
void sm_runtime_free(sm_runtime *rt);
sm_status sm_runtime_set_threads(sm_runtime *rt, int n_threads);   /* 0 = OpenMP's default */
/* Initialises every parameter by its sm_init rule, deterministically from seed. */
sm_status sm_runtime_init_params(sm_runtime *rt, uint64_t seed);
/* Copies every parameter of dst's graph from the tensor of the same name in src (same type and
 * number of values), as sm_runtime_get and sm_runtime_set see them: a parameter either plan stores in
 * 16 bits goes through f32. How one model's weights reach another instance of it (a validation
 * model, an inference session). */
sm_status sm_runtime_copy_params(sm_runtime *dst, const sm_runtime *src);
/* Copies bytes in/out of a tensor; bytes must equal the tensor's size. */
sm_status sm_runtime_set(sm_runtime *rt, sm_tensor t, const void *src, size_t bytes);
sm_status sm_runtime_get(const sm_runtime *rt, sm_tensor t, void *dst, size_t bytes);
/* Direct pointer to a tensor's storage (valid until the runtime is freed; contents of activations
 * are only meaningful while they are live). */
sm_status sm_runtime_data(sm_runtime *rt, sm_tensor t, void **ptr);
/* The type the plan stores t in: its graph dtype, or the 16-bit type a precision policy gave a
 * weight (then sm_runtime_set/get convert from/to f32 and sm_runtime_data refuses it). */
sm_status sm_runtime_storage(const sm_runtime *rt, sm_tensor t, sm_dtype *out);
/* Runs every node of the plan once, in plan order, in one OpenMP parallel region. */
sm_status sm_runtime_run(sm_runtime *rt);
/* The graph the runtime runs. */
const sm_graph *sm_runtime_graph(const sm_runtime *rt);

/* Hooks: code that must run between two nodes of a run, such as the data-parallel gradient exchange
 * (start reducing a gradient as soon as its node has written it, wait for the result before the
 * first node that reads it). For each watched tensor the runtime calls the hook twice per run:
 * SM_HOOK_WRITTEN after the node that writes it, and SM_HOOK_NEEDED before the first later node that
 * reads it (none if no later node does). Calls at one point come in watch order, WRITTEN before
 * NEEDED. The hook runs on the thread that called sm_runtime_run while the other threads wait at a
 * barrier, so it may call libraries that want one thread (MPI_THREAD_FUNNELED). A status other than
 * SM_OK stops the run, which returns it. Points with no call cost nothing. */
typedef enum sm_hook_event { SM_HOOK_WRITTEN = 0, SM_HOOK_NEEDED } sm_hook_event;
typedef sm_status (*sm_runtime_hook)(void *user, sm_hook_event ev, sm_tensor t);
/* Sets the hook (NULL: none) and forgets the watched tensors. */
sm_status sm_runtime_set_hook(sm_runtime *rt, sm_runtime_hook fn, void *user);
/* Watches t, a tensor some node of the plan writes (not an input or a parameter). */
sm_status sm_runtime_watch(sm_runtime *rt, sm_tensor t);

/* Weights as safetensors files, tensors named as in the graph; every tensor carries an XXH3 checksum
 * verified on load, and files are written atomically (temp file, fsync, rename). With
 * SM_SAVE_OPTIMIZER the optimizer state is saved/loaded too (a training checkpoint). Loading refuses a
 * file whose tensors do not match the graph's, naming the tensor. */
#define SM_SAVE_OPTIMIZER 1u
sm_status sm_runtime_save(sm_runtime *rt, const char *path, unsigned flags);
sm_status sm_runtime_load(sm_runtime *rt, const char *path, unsigned flags);

/* ---- training step ---------------------------------------------------------------------------- */

/* What a step of a training graph reads and writes: its i32 token and target inputs, its f32 [1] loss
 * and the optimizer's tensors (sm_graph_adamw). */
typedef struct sm_train_tensors {
    sm_tensor tokens, targets, loss;
    sm_adamw_tensors opt;
} sm_train_tensors;

typedef struct sm_train_step_result {
    float loss;                        /* the batch's mean loss */
    float hparams[SM_ADAMW_HPARAMS];   /* what the optimizer ran with (hparams[SM_ADAMW_LR]: the lr) */
    float scale;                       /* the loss scale the step ran with (1 without scaling) */
    int skipped;                       /* 1: the gradients overflowed; no parameter or moment changed */
} sm_train_step_result;

/* Optimizer step number `step` (0-based: it sets the learning-rate schedule) of a training runtime on
 * one batch: x and y are the n tokens and targets of the graph's inputs. Sets the step's AdamW
 * hyperparameters (bias corrections counting the updates applied: sc->skipped of the steps before
 * were skipped) and, in a graph built with sm_graph_backward_scaled, the loss scale sc->scale; runs
 * the plan once; reads the loss; then, with scaling, feeds the step's overflow flag to sc
 * (sm_loss_scaler_update). sc may be NULL for a graph without loss scaling. */
sm_status sm_train_step(sm_runtime *rt, const sm_train_tensors *t, const sm_adamw_config *cfg, int64_t step,
                        sm_loss_scaler *sc, const int32_t *x, const int32_t *y, size_t n, sm_train_step_result *out);

/* ---- GPT template ------------------------------------------------------------------------------ */

typedef struct sm_gpt_config {
    int vocab;            /* V */
    int context;          /* maximum sequence length (learned positions) */
    int n_layer;          /* L */
    int n_head;           /* H */
    int n_embd;           /* C */
    int mlp_ratio;        /* hidden = mlp_ratio * C; 4 for GPT-2 */
    int tied_embeddings;  /* lm head reuses the token embedding */
    int batch;            /* B for this instance */
    int seq;              /* T for this instance (<= context) */
    int with_loss;        /* add a targets input and the cross-entropy loss */
    int full_logits;      /* with_loss: 0 (default) = the fused lm_head_ce, no logits tensor (logits = NO
                             tensor); 1 = a [B,T,V] logits tensor and cross_entropy on it */
    int span;             /* attention window: 0 (default) = full causal; > 0 = the last span keys */
    /* The decode instance (kv_positions > 0, no loss): T = seq new tokens per run at the positions of
     * the i32 input "positions" [B,T], attending over per-layer KV caches "h<l>.k_cache" and
     * "h<l>.v_cache" [B, kv_positions, C] (role KV) through kv_attention; logits [B,T,V] are bitwise
     * the full forward's rows at those positions. */
    int kv_positions;     /* cache rows P (a linear cache: positions < P <= context) */
    int kv_ring;          /* 1: a ring cache for span > 0 (P >= kv_sink + span + seq - 1) */
    int kv_sink;          /* ring: attention-sink positions kept for good */
} sm_gpt_config;

typedef struct sm_gpt_tensors {
    sm_tensor tokens;     /* input  i32 [B,T] */
    sm_tensor targets;    /* input  i32 [B,T] (SM_NO_TENSOR without loss) */
    sm_tensor logits;     /* output f32 [B,T,V] (SM_NO_TENSOR with a fused loss) */
    sm_tensor loss;       /* output f32 [1]   (SM_NO_TENSOR without loss) */
    sm_tensor positions;  /* input  i32 [B,T] of a decode instance (else SM_NO_TENSOR) */
} sm_gpt_tensors;

/* Defaults: the demo model (byte-level, L=6, C=384, H=6, T=256, B=8). */
void sm_gpt_config_default(sm_gpt_config *c);
sm_status sm_gpt_build(sm_graph *g, const sm_gpt_config *c, sm_gpt_tensors *out);

/* ---- inference sessions: generation with a KV cache ------------------------------------------- */

/* An inference session of a GPT-template model: a KV cache (per layer K and V, positions x heads x
 * head_dim, role KV, in the plan's KV arena) and two instances of the model that share its weights and
 * cache: a decode instance (one new token per run) and a prefill instance (`chunk` new tokens per
 * run). Appending tokens runs them through the model once each (prefill in chunks, the rest one at a
 * time) and gives their logits: the same bits as the full forward of the whole sequence, at every
 * position (ops/kv_attention.c says why). The cache lives in RAM or in a file (a header, then the KV
 * arena: docs/kv-format.md), which persists and can be resumed. */
typedef struct sm_infer sm_infer;

typedef struct sm_infer_options {
    int positions;        /* KV cache rows: 0 = the model's context (linear) or, for a ring, the least
                             that works (sink + span + chunk - 1) */
    int chunk;            /* prefill tokens per run (default 64); 1 = no prefill instance */
    int ring;             /* 1: a sliding-window ring (the model needs span > 0): memory O(span + sink),
                             positions up to the model's context */
    int sink;             /* ring: attention-sink positions kept for good (StreamingLLM) */
    const char *kv_file;  /* NULL: the KV cache in RAM; else a file (created: it must not exist) */
    int resume;           /* with kv_file: open the existing file and continue the session it holds */
    int n_threads;        /* 0 = OpenMP's default */
    uint64_t seed;        /* weights from sm_runtime_init_params(seed) when no weights are given */
} sm_infer_options;

void sm_infer_options_default(sm_infer_options *o);
/* model: a GPT template config (its batch, seq, with_loss, full_logits and kv_* fields are set by the
 * session). weights: a runtime holding every parameter of the model under its canonical name and
 * size (they are copied; the runtime may be freed afterwards), or NULL (initialised from o->seed).
 * With o->kv_file, a new file is created and its blocks reserved now (a full disk is an error here,
 * not a crash later), or (o->resume) an existing one is checked: a file made for another model or
 * layout, a truncated file or a corrupt header is refused with a message naming what differs. The
 * file stays locked while the session is open: a second session on it is refused. */
sm_status sm_infer_create(const sm_gpt_config *model, const sm_runtime *weights, const sm_infer_options *o,
                          sm_infer **out);
void sm_infer_free(sm_infer *s);   /* syncs a file cache first */
/* Runs tokens[0..n) at the next positions. logits (may be NULL): all = 0: the last token's [V];
 * all = 1: every token's [n, V]. SM_ERR_INVALID_ARG when a token is outside the vocabulary or a
 * linear cache (or the learned positions) would overflow; nothing is run then. */
sm_status sm_infer_append(sm_infer *s, const int32_t *tokens, int64_t n, float *logits, int all);
/* How the next token is drawn from the logits. */
typedef struct sm_sampling {
    float temperature;    /* 0 = greedy (argmax) */
    int top_k;            /* the k most likely; 0 = all */
    float top_p;          /* nucleus: the smallest set reaching probability top_p, in (0, 1]; 1 = all */
    uint64_t seed;        /* draw number i of a generation is deterministic in (seed, i) */
} sm_sampling;
/* Called with each generated token; a status other than SM_OK stops the generation and is returned. */
typedef sm_status (*sm_infer_token_fn)(void *user, int32_t token);
/* Generation: runs prompt[0..n_prompt) (prefill), then n_new times draws the next token from the
 * logits (draw number i), hands it to fn (may be NULL) and appends it. With an empty prompt the session
 * goes on from its last token (a resumed file; SM_ERR_INVALID_ARG when it holds none). When a linear
 * cache is full, each further token re-runs the last P tokens of this generation from position 0
 * (learned positions cannot slide: what the uncached path does with a window of P), so the tokens are
 * those of the uncached path; a session that held positions before this call cannot (it does not know
 * their tokens) and stops there. *n_done (may be NULL): the tokens generated. */
sm_status sm_infer_generate(sm_infer *s, const int32_t *prompt, int64_t n_prompt, int64_t n_new,
                            const sm_sampling *how, sm_infer_token_fn fn, void *user, int64_t *n_done);
int64_t sm_infer_length(const sm_infer *s);          /* positions filled */
int32_t sm_infer_last_token(const sm_infer *s);      /* the token at position length-1 (-1 if empty) */
/* Forgets positions n.. (0 <= n <= length): the next token goes at position n. A ring whose early
 * positions were overwritten cannot go back: SM_ERR_STATE. */
sm_status sm_infer_rewind(sm_infer *s, int64_t n);
sm_status sm_infer_clear(sm_infer *s);               /* rewind to 0 */
sm_status sm_infer_sync(sm_infer *s);                /* a file cache: to disk now */
/* The decode (which = 0) or prefill (1, NULL when chunk = 1) instance's plan and graph: their KV
 * arena is the cache. */
const sm_plan *sm_infer_plan(const sm_infer *s, int which);
const sm_graph *sm_infer_graph(const sm_infer *s, int which);
uint64_t sm_infer_kv_bytes(const sm_infer *s);       /* the cache's bytes */
/* Bytes the session takes: weights and cache once, each instance's activations and workspace, and
 * the tables (sm_plan_estimate's terms). */
uint64_t sm_infer_bytes(const sm_infer *s);
int sm_infer_vocab(const sm_infer *s);
int64_t sm_infer_capacity(const sm_infer *s);        /* positions a linear cache holds; a ring: the
                                                        positions the model learned (its context) */

/* ---- windows: sequences longer than the context ------------------------------------------------ */

/* A sequence of n positions tiled into windows of W positions with stride S (0 < S <= W; overlap
 * W - S): windows start at 0, S, 2S, ...; the last may be partial, and is there only if no earlier
 * window reaches the end. Their count is 0 for n = 0, 1 for n <= W, else ceil((n - W) / S) + 1. */
typedef struct sm_windows {
    int64_t n;            /* positions tiled */
    int64_t window;       /* W */
    int64_t stride;       /* S */
    int64_t count;        /* windows */
} sm_windows;

/* Window k of a tiling. */
typedef struct sm_window {
    int64_t begin, end;   /* positions [begin, end): begin = k*S, end = min(begin + W, n) */
    int64_t own;          /* [own, end) are the positions no earlier window covers: this window is the
                             one that gives them the most left context (own = begin + W - S for k > 0,
                             so at least W - S positions; 0 for window 0) */
} sm_window;

/* How outputs (logits, hidden states) of overlapping windows become one output per position. */
typedef enum sm_window_combine {
    SM_WINDOW_MEAN = 0,       /* the uniform average over the windows covering the position */
    SM_WINDOW_MAX,            /* the element-wise maximum over them */
    SM_WINDOW_LAST_CONTEXT    /* the one from the window with the most left context (sm_window.own) */
} sm_window_combine;

/* Fills w; SM_ERR_INVALID_ARG for n < 0, W < 1, S < 1 or S > W ("stride cannot be greater than
 * window"). */
sm_status sm_windows_init(sm_windows *w, int64_t n, int64_t window, int64_t stride);
/* Window k (0 <= k < count). */
sm_status sm_windows_get(const sm_windows *w, int64_t k, sm_window *out);
/* The default window and stride for a context of `context` tokens: W = max(2048, context / 8),
 * S = W / 2. */
void sm_windows_default(int64_t context, int64_t *window, int64_t *stride);
/* "mean", "max", "last-context" <-> the enum. */
sm_status sm_window_combine_parse(const char *text, sm_window_combine *out);
const char *sm_window_combine_name(sm_window_combine c);
/* Merges window k's outputs rows[0 .. (end-begin)*dim) into out [n, dim] by `how`. Merge the windows
 * in order k = 0, 1, ...: once window k is merged, positions before window k+1's begin are final
 * (a mean is sum-then-divide, in window order, so results do not depend on anything else). */
sm_status sm_windows_merge(const sm_windows *w, sm_window_combine how, int64_t k, const float *rows, int64_t dim,
                           float *out);

/* Runs a forward graph over every window of tokens[0..n), B windows per run through rt's one plan (so
 * its memory does not grow with n), and combines the windows' outputs into out [n, D] by `how`.
 * ids: the graph's i32 input [B, W] (W and B are its shape; a partial window is padded with token 0,
 * which causal models never look back at); y: an f32 output of B*W*D elements, rows in (b, t) order
 * (logits [B, W, V], hidden states [B, W, C]). */
sm_status sm_windows_forward(sm_runtime *rt, sm_tensor ids, sm_tensor y, const int32_t *tokens, int64_t n,
                             int64_t stride, sm_window_combine how, float *out);

/* Strided evaluation of a language model over a token stream (the strided perplexity of Hugging Face's
 * perplexity guide): the inputs tokens[0..n-1) are tiled into windows of W with stride S, and each
 * window scores only the next-token predictions of the positions it owns (sm_window.own), so every
 * token but the first is predicted exactly once, with at least W - S tokens of context once the
 * stream is longer than W. S = W gives consecutive non-overlapping windows. The stream is pushed in
 * pieces of any size and buffered in (B-1)*S + W + 1 tokens, so memory does not grow with its length;
 * B windows go through each run. */
typedef struct sm_window_eval sm_window_eval;
typedef struct sm_window_eval_result {
    int64_t tokens;       /* tokens pushed */
    int64_t predicted;    /* tokens scored: tokens - 1 (0 for an empty stream) */
    int64_t windows;      /* windows run */
    int64_t runs;         /* runs of the plan */
    double nll;           /* summed negative log-likelihood (nats) of the predicted tokens */
    double cross_entropy; /* nll / predicted (NaN when nothing was predicted) */
} sm_window_eval_result;
/* ids and targets: the graph's i32 inputs [B, W]; loss: its f32 [1] mean cross-entropy over the
 * targets that are not -1 (sm_gpt_build with with_loss). rt must outlive the evaluator. */
sm_status sm_window_eval_create(sm_runtime *rt, sm_tensor ids, sm_tensor targets, sm_tensor loss, int64_t stride,
                                sm_window_eval **out);
sm_status sm_window_eval_push(sm_window_eval *e, const int32_t *tokens, int64_t n);
/* Runs what is left (the last windows may be partial) and gives the totals; push no more after it. */
sm_status sm_window_eval_finish(sm_window_eval *e, sm_window_eval_result *out);
void sm_window_eval_free(sm_window_eval *e);

/* ---- system memory ----------------------------------------------------------------------------- */

#define SM_FEATURES_MAX 192   /* capacity of sm_sysinfo.features */
#define SM_BYTES_STR_MAX 32   /* a buffer this big always holds sm_format_bytes' text */

/* What this machine and process may use. Byte counts are bytes; 0 means "not known / none". */
typedef struct sm_sysinfo {
    uint64_t total;               /* RAM of the machine (/proc/meminfo MemTotal) */
    uint64_t available;           /* RAM usable now without swapping (MemAvailable); 0 = unknown */
    uint64_t cgroup_limit;        /* tightest container limit on this process (cgroup v2 memory.max or
                                     memory.high, v1 memory.limit_in_bytes, over all ancestors); 0 = none */
    int cgroup_version;           /* 2 or 1: where cgroup_limit came from; 0 = no limit found */
    uint64_t budget_auto;         /* what a budget of "auto" means: the smallest of total, available and
                                     cgroup_limit among those known (no headroom is subtracted) */
    int n_cpus;                   /* CPUs this process may run on (its affinity mask) */
    int n_threads;                /* OpenMP's default thread count (omp_get_max_threads) */
    char features[SM_FEATURES_MAX]; /* CPU features that matter to the kernels, space separated,
                                       e.g. "sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl" */
    int64_t recommended_context;  /* sm_recommended_context(budget_auto) */
} sm_sysinfo;

/* Reads /proc and /sys (Linux). Fields that cannot be read are 0; fails only if even the total RAM
 * cannot be found. */
sm_status sm_sysinfo_get(sm_sysinfo *out);
/* The process's peak resident set size so far (VmHWM), in bytes. */
sm_status sm_peak_rss(uint64_t *out);

/* A documented default, not a promise: the context length (tokens) to suggest for a memory budget.
 * Anchors 8 GiB -> 8k, 16 GiB -> 32k, 32 GiB -> 48k, 64 GiB -> 64k, 128 GiB -> 128k tokens
 * (k = 1024), linear in log2(budget) between anchors, rounded down to a multiple of 256 tokens,
 * and clamped to 8k below 8 GiB and 128k above 128 GiB. */
int64_t sm_recommended_context(uint64_t budget_bytes);

/* Parses a byte size: "123456", "512M", "8G" = "8GiB" = 8*2^30, "8GB" = 8*10^9, "1.5GB".
 * K M G T P E and KiB … EiB are powers of 1024; KB … EB powers of 1000; case-insensitive; one space
 * may separate number and unit; fractions need a unit and round down to whole bytes. Anything else
 * (negative, empty, unknown unit, overflow past 2^64-1) is SM_ERR_INVALID_ARG naming the text. */
sm_status sm_parse_bytes(const char *s, uint64_t *out);
/* Writes bytes for people ("512 B", "1.23 GiB": binary units, two decimals) into buf and returns buf
 * (truncated to cap; SM_BYTES_STR_MAX always suffices). */
const char *sm_format_bytes(uint64_t bytes, char *buf, size_t cap);

/* ---- memory plan: arenas, figures, reports, plan files, budgets ---------------------------------- */
/* A plan puts every tensor at a fixed offset in one of these arenas (one allocation each). They are
 * also the breakdown by role: weights, gradients, optimizer state, activations (with the inputs and
 * outputs), KV cache, per-thread workspace. */
typedef enum sm_arena_id {
    SM_ARENA_PARAMS = 0,  /* weights: persist across runs */
    SM_ARENA_GRADS,       /* parameter gradients */
    SM_ARENA_OPTIM,       /* optimizer state (AdamW moments): persists across runs */
    SM_ARENA_ACT,         /* inputs, activations, outputs: the only arena whose ranges are reused */
    SM_ARENA_KV,          /* attention key/value cache */
    SM_ARENA_WORK,        /* kernel scratch: n_threads x the largest per-thread need */
    SM_ARENA_COUNT
} sm_arena_id;

const char *sm_arena_name(sm_arena_id a);       /* "params", "grads", "optim", "activations", ... */
const char *sm_arena_role_label(sm_arena_id a); /* "weights", "gradients", "optimizer state", ... */
/* What shrinks an arena, for messages: "lower the batch B or the sequence length T (-B, -T)". */
const char *sm_arena_advice(sm_arena_id a);

#define SM_PLAN_MAX_PACKERS 8
/* The figures behind one arena's size. */
typedef struct sm_plan_arena_info {
    uint64_t size;          /* bytes the runtime allocates */
    uint64_t lower_bound;   /* max bytes live at any one step (sizes rounded up to 64): no layout is smaller */
    uint64_t naive;         /* bytes with no reuse at all */
    int peak_step;          /* a step where the lower bound is reached */
    int n_packers;          /* offset packers tried (0: laid end to end, nothing can share) */
    const char *packer_name[SM_PLAN_MAX_PACKERS];
    uint64_t packer_size[SM_PLAN_MAX_PACKERS];
    int chosen;             /* index of the packer whose layout is used; -1 = laid end to end */
} sm_plan_arena_info;

sm_status sm_plan_arena_stats(const sm_plan *p, sm_arena_id a, sm_plan_arena_info *out);
/* Where a tensor lives: arena, byte offset, bytes, and the steps of its first and last use (any
 * out-pointer may be NULL). */
sm_status sm_plan_tensor_place(const sm_plan *p, sm_tensor t, sm_arena_id *arena, uint64_t *offset,
                               uint64_t *bytes, int *first, int *last);
/* The arena holding most bytes: the term to shrink first. */
sm_arena_id sm_plan_dominant(const sm_plan *p);

/* XXH3 of a graph's structure (tensors' names, shapes, dtypes, roles; nodes' ops, inputs, attributes)
 * and of a plan (its graph's hash plus the options that shape the layout). */
uint64_t sm_graph_hash(const sm_graph *g);
uint64_t sm_plan_hash(const sm_plan *p);

/* Bytes a run of this plan takes, answered from the plan: the arenas plus SmallMind's own tables
 * (graph, plan, runtime bindings). Not counted: the program, libc and OpenMP runtimes, thread stacks. */
uint64_t sm_plan_estimate(const sm_plan *p);
/* 1 if sm_plan_estimate(p) <= budget, else 0. */
int sm_plan_can_fit(const sm_plan *p, uint64_t budget);
/* Checks a plan against a graph: same graph, a topological order, every tensor inside its arena and
 * live wherever it is read, and no two tensors live at the same step overlapping in memory.
 * SM_ERR_INTERNAL naming the tensors otherwise. */
sm_status sm_plan_validate(const sm_plan *p, const sm_graph *g);

typedef enum sm_report_format { SM_REPORT_TEXT = 0, SM_REPORT_JSON } sm_report_format;
/* The plan as text for people or JSON (schema: docs/plan-format.md): breakdown by role, each arena's
 * size, lower bound, ratio, packers and naive size, the total, the budget verdict (budget 0 = none),
 * the dominant term and what shrinks it. g (may be NULL) names the largest tensors. *out is
 * malloc'd: free() it. */
sm_status sm_plan_report(const sm_plan *p, const sm_graph *g, sm_report_format f, uint64_t budget,
                         char **out);
/* The activation arena as an SVG picture (time across, offset up, one rectangle per tensor),
 * written atomically. */
sm_status sm_plan_write_svg(const sm_plan *p, const sm_graph *g, const char *path);
/* A plan file: versioned, XXH3-checksummed, written atomically (docs/plan-format.md). Loading
 * checks the checksum, the graph's hash (a plan made for another graph is refused, naming both
 * hashes) and validates the layout before trusting it. */
sm_status sm_plan_save(const sm_plan *p, const char *path);
sm_status sm_plan_load(const sm_graph *g, const char *path, sm_plan **out);

/* The memory configuration in one place (what `smallmind sysinfo` and the head of `smallmind plan`
 * print): the machine's memory and container limit, the budget in effect, the context the
 * recommended-context table suggests for it and the window/stride for that context, and the
 * recompute, precision and KV placement policies in effect — read from a real plan when one is given,
 * else the ones sm_plan_options_default gives a plan. */
typedef struct sm_memory_config {
    sm_sysinfo sys;                 /* RAM, available RAM, container limit, budget_auto, CPUs */
    uint64_t budget;                /* the budget in effect: the one given, else sys.budget_auto */
    int budget_given;               /* 1: given by the caller; 0: auto */
    int64_t context;                /* sm_recommended_context(budget) */
    int64_t window, stride;         /* sm_windows_default(context) */
    int from_plan;                  /* 1: the fields below are a plan's; 0: a default plan's */
    sm_recompute_policy recompute;  /* the recompute policy asked for */
    sm_recompute_kind recompute_applied;  /* what it resolved to (NONE, EVERY, SELECTIVE) */
    int recompute_every;            /* K when EVERY */
    sm_precision precision;         /* the precision policy (fp32, bf16, fp16) */
    int n_stored[SM_DTYPE_COUNT];   /* the plan's float tensors stored in each type (precision) */
    int n_kv;                       /* KV cache tensors */
    uint64_t kv_bytes;              /* the KV arena */
    uint64_t plan_estimate;         /* sm_plan_estimate (0 without a plan) */
} sm_memory_config;

/* Fills out; plan may be NULL; budget 0 = auto. Fails only if the system memory cannot be read. */
sm_status sm_memory_config_get(const sm_plan *plan, uint64_t budget, sm_memory_config *out);
/* The configuration as text for people (a block of "name  value" lines) or as a JSON object; *out is
 * malloc'd: free() it. */
sm_status sm_memory_config_report(const sm_memory_config *c, sm_report_format f, char **out);

/* Debug runs: every tensor's bytes are filled with NaN (all ones) when its storage dies, and before
 * each node the runtime checks that its inputs' and output's ranges still belong to them (no dead
 * or overwritten range is read). A violation stops the run with SM_ERR_INTERNAL naming the node. */
sm_status sm_runtime_set_debug(sm_runtime *rt, int on);

/* Profiling: while on, every run adds each plan step's wall time to that step's total. The calling
 * thread reads the clock at the barrier that ends each node, so a step's time is its node's kernel
 * plus the wait for its slowest thread (views take no time). Switching it on (again) resets the totals;
 * off, the default, costs nothing. Debug runs are not profiled. */
typedef struct sm_profile_step {
    sm_op_kind op;        /* the node's op */
    sm_tensor out;        /* the node's output: its name says where in the model the step is */
    double seconds;       /* summed over the profiled runs */
} sm_profile_step;
sm_status sm_runtime_set_profile(sm_runtime *rt, int on);
/* The totals, one per plan step in plan order (valid until profiling is switched off or on again or
 * the runtime is freed), and the number of runs they sum (n_runs may be NULL). SM_ERR_STATE if
 * profiling is off. */
sm_status sm_runtime_profile(const sm_runtime *rt, const sm_profile_step **steps, int *n_steps, int *n_runs);

#ifdef __cplusplus
}
#endif
#endif /* SMALLMIND_H */

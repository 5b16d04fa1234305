/* test_graph_parse.c — the graph-file loader: one test per kind of diagnostic with its exact message
 * (position, source line, caret, did-you-mean, repeat notes), then what files mean: expressions,
 * parameters and defines, repeats and rebinding, names, options, every op of the table by name. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontends/graph_parse.h"
#include "frontends/graph_syntax.h"
#include "graph/graph.h"
#include "smallmind.h"

static void expect_error(const char *name, const char *src, size_t len, const char *const *defs, int n_defs,
                         int max_t, int64_t max_s, sm_status want, const char *msg)
{
    sm_graph_load_opts o = {.defines = defs, .n_defines = n_defs, .max_tensors = max_t, .max_steps = max_s};
    sm_graph *g = (sm_graph *)&o; /* must be reset to NULL */
    sm_status s = sm_graph_load_text(src, len, "t.smg", &o, &g, NULL);
    cr_assert_eq(s, want, "%s: status %s, want %s; message:\n%s", name, sm_status_name(s), sm_status_name(want),
                 sm_last_error());
    cr_assert_null(g);
    cr_assert_str_eq(sm_last_error(), msg, "%s: got\n%s\nwant\n%s", name, sm_last_error(), msg);
}

/* name, status, max tensors, max steps, source, message, defines... */
#define DIAG(name, want, max_t, max_s, src, msg, ...)                                                      \
    Test(diagnostic, name)                                                                                \
    {                                                                                                     \
        static const char text[] = src;                                                                   \
        const char *defs[] = {NULL, __VA_ARGS__};                                                         \
        expect_error(#name, text, sizeof text - 1, defs + 1, (int)(sizeof defs / sizeof defs[0]) - 1, max_t, \
                     max_s, want, msg);                                                                   \
    }

DIAG(lex_unterminated_interp, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "weight w{l: f32[2]\n",
     "t.smg:2:9: error: unterminated '{' in a name (a block's '{' needs a space before it)\n"
     "    2 | weight w{l: f32[2]\n"
     "      |         ^")

DIAG(lex_unterminated_quote, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = gelu(\"x)\n",
     "t.smg:3:10: error: unterminated quoted name (close it with '\"')\n"
     "    3 | y = gelu(\"x)\n"
     "      |          ^")

DIAG(lex_control_in_quote, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = gelu(\"a\001\")\n",
     "t.smg:3:12: error: control character 0x01 in a quoted name (write it as \\x01)\n"
     "    3 | y = gelu(\"a?\")\n"
     "      |            ^")

DIAG(lex_nul_escape, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = gelu(\"a\\x00\")\n",
     "t.smg:3:12: error: a name cannot contain a NUL byte\n"
     "    3 | y = gelu(\"a\\x00\")\n"
     "      |            ^~~~")

DIAG(lex_unknown_escape, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = gelu(\"a\\q\")\n",
     "t.smg:3:12: error: unknown escape in a quoted name (use \\\" \\\\ \\n \\t or \\xHH)\n"
     "    3 | y = gelu(\"a\\q\")\n"
     "      |            ^~")

DIAG(lex_number_too_long, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = 1111111111111111111111111111111111111111111111111111111111111111111111\n",
     "t.smg:2:11: error: number is too long (70 characters)\n"
     "    2 | param P = 1111111111111111111111111111111111111111111111111111111111111111111111\n"
     "      |           ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~")

DIAG(lex_float_out_of_range, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = 1e999\n",
     "t.smg:2:11: error: number 1e999 is out of range\n"
     "    2 | param P = 1e999\n"
     "      |           ^~~~~")

DIAG(lex_int_out_of_range, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = 9223372036854775808\n",
     "t.smg:2:11: error: integer 9223372036854775808 is out of range (at most 9223372036854775807)\n"
     "    2 | param P = 9223372036854775808\n"
     "      |           ^~~~~~~~~~~~~~~~~~~")

DIAG(lex_brackets_too_deep, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))\n",
     "t.smg:2:75: error: brackets nested more than 64 deep\n"
     "    2 | param P = ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))\n"
     "      |                                                                           ^")

DIAG(lex_nul_byte, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = 1\000\n",
     "t.smg:2:12: error: NUL byte in the text (is this a binary file?)\n"
     "    2 | param P = 1?\n"
     "      |            ^")

DIAG(lex_unexpected_char, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = 1 $ 2\n",
     "t.smg:2:13: error: unexpected character '$'\n"
     "    2 | param P = 1 $ 2\n"
     "      |             ^")

DIAG(lex_unexpected_byte, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = \303\251\n",
     "t.smg:2:11: error: unexpected byte 0xc3 (names outside quotes are ASCII)\n"
     "    2 | param P = \303\251\n"
     "      |           ^")

DIAG(parse_missing_version, SM_ERR_FORMAT, 0, 0,
     "input x: f32[2]\n",
     "t.smg:1:1: error: a graph file starts with the line 'smallmind-graph 1' (its format version)\n"
     "    1 | input x: f32[2]\n"
     "      | ^~~~~")

DIAG(parse_bad_version, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 7\n",
     "t.smg:1:17: error: format version 7 is not supported; this build reads version 1\n"
     "    1 | smallmind-graph 7\n"
     "      |                 ^")

DIAG(parse_expected, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = scale(x s=2)\n",
     "t.smg:3:13: error: expected ',' or ')', found name 's'\n"
     "    3 | y = scale(x s=2)\n"
     "      |             ^")

DIAG(parse_unknown_statement, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "wieght w: f32[4]\n",
     "t.smg:2:1: error: unknown statement 'wieght'; did you mean 'weight'?\n"
     "    2 | wieght w: f32[4]\n"
     "      | ^~~~~~")

DIAG(parse_not_a_statement, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "42\n",
     "t.smg:2:1: error: expected a statement (name = op(...), param, input, weight, output, checkpoint, loss or repeat), found number 42\n"
     "    2 | 42\n"
     "      | ^~")

DIAG(parse_interp_in_number, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = a{1}\n",
     "t.smg:2:11: error: {...} interpolation belongs in tensor names, not in numbers\n"
     "    2 | param P = a{1}\n"
     "      |           ^~~~")

DIAG(parse_expr_too_deep, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = ----------------------------------------------------------------------1\n",
     "t.smg:2:75: error: expression nested more than 64 deep\n"
     "    2 | param P = ----------------------------------------------------------------------1\n"
     "      |                                                                           ^")

DIAG(parse_empty_interp, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "weight w{}: f32[2]\n",
     "t.smg:2:9: error: empty {} in a name\n"
     "    2 | weight w{}: f32[2]\n"
     "      |         ^~")

DIAG(parse_too_many_dims, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[1, 2, 3, 4, 5]\n",
     "t.smg:2:26: error: more than 4 dims; tensors have 1 to 4\n"
     "    2 | input x: f32[1, 2, 3, 4, 5]\n"
     "      |                          ^")

DIAG(parse_args_after_attrs, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = scale(s=2, x)\n",
     "t.smg:3:16: error: tensor arguments come before the key=value attributes\n"
     "    3 | y = scale(s=2, x)\n"
     "      |                ^")

DIAG(parse_repeat_too_deep, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "repeat i0 in 0..1 {\n"
     "repeat i1 in 0..1 {\n"
     "repeat i2 in 0..1 {\n"
     "repeat i3 in 0..1 {\n"
     "repeat i4 in 0..1 {\n"
     "repeat i5 in 0..1 {\n"
     "repeat i6 in 0..1 {\n"
     "repeat i7 in 0..1 {\n"
     "repeat i8 in 0..1 {\n"
     "repeat i9 in 0..1 {\n"
     "repeat i10 in 0..1 {\n"
     "repeat i11 in 0..1 {\n"
     "repeat i12 in 0..1 {\n"
     "repeat i13 in 0..1 {\n"
     "repeat i14 in 0..1 {\n"
     "repeat i15 in 0..1 {\n"
     "repeat i16 in 0..1 {\n"
     "}\n"
     "}\n"
     "}\n"
     "}\n"
     "}\n"
     "}\n"
     "}\n"
     "}\n"
     "}\n"
     "}\n"
     "}\n"
     "}\n"
     "}\n"
     "}\n"
     "}\n"
     "}\n"
     "}\n",
     "t.smg:18:1: error: repeat nested more than 16 deep\n"
     "   18 | repeat i16 in 0..1 {\n"
     "      | ^~~~~~")

DIAG(parse_stray_brace, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "}\n",
     "t.smg:2:1: error: '}' without a repeat to close\n"
     "    2 | }\n"
     "      | ^")

DIAG(parse_unclosed_repeat, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "repeat i in 0..2 {\n",
     "t.smg:3:1: error: expected '}' closing the repeat, found end of file\n"
     "    3 | \n"
     "      | ^")

DIAG(parse_param_name, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param \"P\" = 1\n",
     "t.smg:2:7: error: a parameter name is a plain name, like T or n_layer\n"
     "    2 | param \"P\" = 1\n"
     "      |       ^~~")

DIAG(parse_repeat_in, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "repeat i of 0..2 {\n"
     "}\n",
     "t.smg:2:10: error: expected 'in', as in 'repeat l in 0..L {', found name 'of'\n"
     "    2 | repeat i of 0..2 {\n"
     "      |          ^~")

DIAG(parse_define_syntax, SM_ERR_INVALID_ARG, 0, 0,
     "smallmind-graph 1\n"
     "param T = 1\n",
     "<command line>:1:1: error: a define is KEY=VALUE, like T=4096\n"
     "    1 | T\n"
     "      | ^",
     "T")

DIAG(num_unknown_param, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param TT = 4\n"
     "input x: f32[T]\n",
     "t.smg:3:14: error: unknown parameter 'T'\n"
     "    3 | input x: f32[T]\n"
     "      |              ^")

DIAG(num_tensor_as_number, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "input y: f32[x]\n",
     "t.smg:3:14: error: 'x' is a tensor; numbers use parameters and loop variables only\n"
     "    3 | input y: f32[x]\n"
     "      |              ^")

DIAG(num_dtype_outside_dtype_attr, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = scale(x, s=f16)\n",
     "t.smg:3:16: error: 'f16' is a dtype; dtype names are values of a 'dtype' attribute only\n"
     "    3 | y = scale(x, s=f16)\n"
     "      |                ^~~")

DIAG(num_unknown_function, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = sqr(4)\n",
     "t.smg:2:11: error: unknown function 'sqr'; did you mean 'sqrt'? (numbers have sqrt, min and max)\n"
     "    2 | param P = sqr(4)\n"
     "      |           ^~~")

DIAG(num_function_arity, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = max(4)\n",
     "t.smg:2:11: error: max takes 2 arguments, got 1\n"
     "    2 | param P = max(4)\n"
     "      |           ^~~")

DIAG(num_sqrt_negative, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = sqrt(-1)\n",
     "t.smg:2:11: error: sqrt of a negative number\n"
     "    2 | param P = sqrt(-1)\n"
     "      |           ^~~~")

DIAG(num_division_by_zero, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param N = 0\n"
     "input x: f32[4 / N]\n",
     "t.smg:3:16: error: division by zero\n"
     "    3 | input x: f32[4 / N]\n"
     "      |                ^")

DIAG(num_overflow, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = 4611686018427387904 * 2\n",
     "t.smg:2:31: error: integer overflow\n"
     "    2 | param P = 4611686018427387904 * 2\n"
     "      |                               ^")

DIAG(num_mod_float, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = 5.0 % 2\n",
     "t.smg:2:15: error: '%' needs integers\n"
     "    2 | param P = 5.0 % 2\n"
     "      |               ^")

DIAG(num_not_integer, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2.5]\n",
     "t.smg:2:14: error: a dim must be an integer, got 2.5\n"
     "    2 | input x: f32[2.5]\n"
     "      |              ^~~")

DIAG(num_float_range, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = scale(x, s=1e300)\n",
     "t.smg:3:16: error: attribute value 1e+300 does not fit a float\n"
     "    3 | y = scale(x, s=1e300)\n"
     "      |                ^~~~~")

DIAG(name_too_long, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: f32[2]\n",
     "t.smg:2:7: error: name is longer than 63 bytes\n"
     "    2 | input aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: f32[2]\n"
     "      |       ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~")

DIAG(name_empty, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input \"\": f32[2]\n",
     "t.smg:2:7: error: empty name\n"
     "    2 | input \"\": f32[2]\n"
     "      |       ^~")

DIAG(name_unknown_tensor, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "input y: f32[3]\n"
     "z = add(xx, y)\n",
     "t.smg:4:9: error: unknown tensor 'xx'; did you mean 'x'?\n"
     "    4 | z = add(xx, y)\n"
     "      |         ^~")

DIAG(name_not_a_tensor, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "param P = 2\n"
     "y = gelu(P)\n",
     "t.smg:4:10: error: 'P' is a parameter, not a tensor\n"
     "    4 | y = gelu(P)\n"
     "      |          ^")

DIAG(name_already_declared, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "weight x: f32[3]\n",
     "t.smg:3:8: error: 'x' is already declared (the input at line 2)\n"
     "    3 | weight x: f32[3]\n"
     "      |        ^")

DIAG(name_cannot_rebind_leaf, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "x = gelu(x)\n",
     "t.smg:3:1: error: 'x' is the input declared at line 2; it cannot be rebound\n"
     "    3 | x = gelu(x)\n"
     "      | ^")

DIAG(name_rebound_too_long, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: f32[2]\n"
     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb = gelu(aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa)\n"
     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb = gelu(bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb)\n",
     "t.smg:4:1: error: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' rebound: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.1' is longer than 63 bytes\n"
     "    4 | bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb = gelu(bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb)\n"
     "      | ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~")

DIAG(type_unknown_dtype, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f23[2]\n",
     "t.smg:2:10: error: unknown dtype 'f23'; did you mean 'f32'?\n"
     "    2 | input x: f23[2]\n"
     "      |          ^~~")

DIAG(type_dim_below_one, SM_ERR_SHAPE, 0, 0,
     "smallmind-graph 1\n"
     "param N = 0\n"
     "input x: f32[2, N]\n",
     "t.smg:3:17: error: dim 1 is 0; dims must be >= 1\n"
     "    3 | input x: f32[2, N]\n"
     "      |                 ^")

DIAG(type_too_many_elements, SM_ERR_SHAPE, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[1048576, 1048576, 2]\n",
     "t.smg:2:32: error: the shape has more than 2^40 elements\n"
     "    2 | input x: f32[1048576, 1048576, 2]\n"
     "      |                                ^")

DIAG(type_annotation_mismatch, SM_ERR_SHAPE, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y: f32[3, 2] = gelu(x)\n",
     "t.smg:3:4: error: 'y' is f32[2, 3], not f32[3, 2] as annotated\n"
     "    3 | y: f32[3, 2] = gelu(x)\n"
     "      |    ^~~")

DIAG(opt_unknown_suggest, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "weight w: f32[2] int=zeros\n",
     "t.smg:2:18: error: a weight has no option 'int'; did you mean 'init'?\n"
     "    2 | weight w: f32[2] int=zeros\n"
     "      |                  ^~~")

DIAG(opt_unknown_list, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "weight w: f32[2] color=red\n",
     "t.smg:2:18: error: a weight has no option 'color' (it takes: init, trainable)\n"
     "    2 | weight w: f32[2] color=red\n"
     "      |                  ^~~~~")

DIAG(opt_none_taken, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2] init=zeros\n",
     "t.smg:2:17: error: an input takes no options\n"
     "    2 | input x: f32[2] init=zeros\n"
     "      |                 ^~~~")

DIAG(opt_twice, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "weight w: f32[2] init=zeros init=ones\n",
     "t.smg:2:29: error: option 'init' is given twice\n"
     "    2 | weight w: f32[2] init=zeros init=ones\n"
     "      |                             ^~~~")

DIAG(opt_unknown_role, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = gelu(x) role=gard\n",
     "t.smg:3:18: error: unknown role 'gard'; did you mean 'grad'? (roles: input, param, activation, output, grad, optim, kv)\n"
     "    3 | y = gelu(x) role=gard\n"
     "      |                  ^~~~")

DIAG(opt_unknown_init, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "weight w: f32[2] init=normall(0.1)\n",
     "t.smg:2:23: error: unknown init 'normall'; did you mean 'normal'? (inits: zeros, ones, normal(std))\n"
     "    2 | weight w: f32[2] init=normall(0.1)\n"
     "      |                       ^~~~~~~")

DIAG(opt_normal_arity, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "weight w: f32[2] init=normal(0.1, 2)\n",
     "t.smg:2:23: error: normal takes one argument, the standard deviation\n"
     "    2 | weight w: f32[2] init=normal(0.1, 2)\n"
     "      |                       ^~~~~~")

DIAG(opt_negative_std, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "weight w: f32[2] init=normal(-0.1)\n",
     "t.smg:2:30: error: the standard deviation must be >= 0\n"
     "    2 | weight w: f32[2] init=normal(-0.1)\n"
     "      |                              ^")

DIAG(opt_tensor_needs_role, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "tensor m: f32[2]\n",
     "t.smg:2:1: error: a tensor declaration needs role=..., like role=optim\n"
     "    2 | tensor m: f32[2]\n"
     "      | ^~~~~~")

DIAG(op_unknown, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = gelo(x)\n",
     "t.smg:3:5: error: unknown op 'gelo'; did you mean 'gelu'?\n"
     "    3 | y = gelo(x)\n"
     "      |     ^~~~")

DIAG(op_unknown_attr_suggest, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = scale(x, S=2)\n",
     "t.smg:3:14: error: op 'scale' has no attribute 'S'; did you mean 's'?\n"
     "    3 | y = scale(x, S=2)\n"
     "      |              ^")

DIAG(op_unknown_attr_list, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = scale(x, factor=2)\n",
     "t.smg:3:14: error: op 'scale' has no attribute 'factor' (it takes: s)\n"
     "    3 | y = scale(x, factor=2)\n"
     "      |              ^~~~~~")

DIAG(op_no_attrs, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = gelu(x, approx=1)\n",
     "t.smg:3:13: error: op 'gelu' takes no attributes\n"
     "    3 | y = gelu(x, approx=1)\n"
     "      |             ^~~~~~")

DIAG(op_attr_twice, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = scale(x, s=2, s=3)\n",
     "t.smg:3:19: error: attribute 's' is given twice\n"
     "    3 | y = scale(x, s=2, s=3)\n"
     "      |                   ^")

DIAG(op_attr_not_integer, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = matmul(x, x, trans_b=0.5)\n",
     "t.smg:3:26: error: attribute 'trans_b' of op 'matmul' is an integer, got 0.5\n"
     "    3 | y = matmul(x, x, trans_b=0.5)\n"
     "      |                          ^~~")

DIAG(op_too_many_args, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = concat(x, x, x, x, x, x, x, x, x)\n",
     "t.smg:3:36: error: more than 8 tensor arguments\n"
     "    3 | y = concat(x, x, x, x, x, x, x, x, x)\n"
     "      |                                    ^")

DIAG(op_shape_error, SM_ERR_SHAPE, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "weight w: f32[4, 4]\n"
     "y = linear(x, w)\n",
     "t.smg:4:5: error: node 'y': linear of 'x' [2, 3] with weight 'w' [4, 4]: the weight must be [N, 3] (out features, in features)\n"
     "    4 | y = linear(x, w)\n"
     "      |     ^~~~~~")

DIAG(op_arity_error, SM_ERR_INVALID_ARG, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "y = add(x)\n",
     "t.smg:3:5: error: node 'y': add takes 2 inputs, got 1\n"
     "    3 | y = add(x)\n"
     "      |     ^~~")

DIAG(mark_loss_twice, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input l: f32[1]\n"
     "loss l\n"
     "loss l\n",
     "t.smg:4:6: error: the loss is already 'l'; a graph has one loss\n"
     "    4 | loss l\n"
     "      |      ^")

DIAG(mark_output_twice, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "output x, x\n",
     "t.smg:3:11: error: 'x' is already an output\n"
     "    3 | output x, x\n"
     "      |           ^")

DIAG(mark_loss_shape, SM_ERR_SHAPE, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "loss x\n",
     "t.smg:3:6: error: loss 'x' must be a single f32 value\n"
     "    3 | loss x\n"
     "      |      ^")

DIAG(mark_grad_twice, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "input x: f32[2, 3]\n"
     "grad x = x\n"
     "grad x = x\n",
     "t.smg:4:6: error: 'x' already has a gradient ('x')\n"
     "    4 | grad x = x\n"
     "      |      ^")

DIAG(param_in_repeat, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "repeat i in 0..2 {\n"
     "    param P = 1\n"
     "}\n",
     "t.smg:3:5: error: parameters are declared at the top level, not in a repeat\n"
     "    3 |     param P = 1\n"
     "      |     ^~~~~\n"
     "t.smg:2:1: note: in iteration i=0 of this repeat")

DIAG(param_reserved, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param f16 = 1\n",
     "t.smg:2:7: error: 'f16' is a reserved word; pick another parameter name\n"
     "    2 | param f16 = 1\n"
     "      |       ^~~")

DIAG(param_too_long, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP = 1\n",
     "t.smg:2:7: error: parameter name is longer than 63 bytes\n"
     "    2 | param PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP = 1\n"
     "      |       ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~")

DIAG(param_twice, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = 1\n"
     "param P = 2\n",
     "t.smg:3:7: error: 'P' is already declared (the parameter at line 2)\n"
     "    3 | param P = 2\n"
     "      |       ^")

DIAG(repeat_backwards, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "repeat i in 3..1 {\n"
     "}\n",
     "t.smg:2:13: error: the range 3..1 runs backwards\n"
     "    2 | repeat i in 3..1 {\n"
     "      |             ^")

DIAG(repeat_var_taken, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param i = 1\n"
     "repeat i in 0..2 {\n"
     "}\n",
     "t.smg:3:8: error: loop variable 'i' is already declared\n"
     "    3 | repeat i in 0..2 {\n"
     "      |        ^")

DIAG(define_unknown, SM_ERR_INVALID_ARG, 0, 0,
     "smallmind-graph 1\n"
     "param T = 1\n"
     "param B = 2\n",
     "<command line>:1:1: error: the graph has no parameter 'TT' to define; did you mean 'T'?\n"
     "    1 | TT=3\n"
     "      | ^~",
     "TT=3")

DIAG(define_twice, SM_ERR_INVALID_ARG, 0, 0,
     "smallmind-graph 1\n"
     "param T = 1\n",
     "<command line>:1:1: error: 'T' is defined twice\n"
     "    1 | T=4\n"
     "      | ^",
     "T=3", "T=4")

DIAG(define_bad_value, SM_ERR_INVALID_ARG, 0, 0,
     "smallmind-graph 1\n"
     "param T = 1\n",
     "<command line>:1:5: error: expected a number or a parameter name, found end of file\n"
     "    1 | T=3+\n"
     "      |     ^",
     "T=3+")

DIAG(op_output_too_large, SM_ERR_SHAPE, 0, 0,
     "smallmind-graph 1\n"
     "input a: f32[2097152, 1]\n"
     "y = matmul(a, a, trans_b=1)\n",
     "t.smg:3:5: error: 'y' would have more than 2^40 elements\n"
     "    3 | y = matmul(a, a, trans_b=1)\n"
     "      |     ^~~~~~")

DIAG(repeat_note, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param L = 3\n"
     "repeat l in 0..L {\n"
     "    repeat k in 0..2 {\n"
     "        weight w{l}_{k / 2}: f32[2]\n"
     "    }\n"
     "}\n",
     "t.smg:5:16: error: 'w0_0' is already declared (the weight at line 5)\n"
     "    5 |         weight w{l}_{k / 2}: f32[2]\n"
     "      |                ^~~~~~~~~~~~\n"
     "t.smg:4:5: note: in iteration k=1 of this repeat\n"
     "t.smg:3:1: note: in iteration l=0 of this repeat")

DIAG(repeat_note_tabs, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "repeat l in 0..2 {\n"
     "\tweight w{l}: f32[2]\n"
     "\tweight\tw{l}: f32[2]\n"
     "}\n",
     "t.smg:4:9: error: 'w0' is already declared (the weight at line 3)\n"
     "    4 | \tweight\tw{l}: f32[2]\n"
     "      | \t      \t^~~~\n"
     "t.smg:2:1: note: in iteration l=0 of this repeat")

DIAG(long_line_window, SM_ERR_FORMAT, 0, 0,
     "smallmind-graph 1\n"
     "param P = 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + x + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1\n",
     "t.smg:2:411: error: unknown parameter 'x'\n"
     "    2 | ...1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + x + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + ...\n"
     "      |                                                                                    ^")

DIAG(limit_tensors, SM_ERR_FORMAT, 10, 0,
     "smallmind-graph 1\n"
     "input x: f32[2]\n"
     "y = gelu(x)\n"
     "repeat i in 0..100 {\n"
     "    y = gelu(y)\n"
     "}\n",
     "t.smg:5:5: error: the graph would have more than 10 tensors (a runaway repeat?)\n"
     "    5 |     y = gelu(y)\n"
     "      |     ^\n"
     "t.smg:4:1: note: in iteration i=8 of this repeat")

DIAG(limit_steps, SM_ERR_FORMAT, 0, 5000,
     "smallmind-graph 1\n"
     "repeat i in 0..1000 {\n"
     "    repeat j in 0..1000 {\n"
     "    }\n"
     "}\n",
     "t.smg:3:5: error: the file expands to more than 5000 statements\n"
     "    3 |     repeat j in 0..1000 {\n"
     "      |     ^~~~~~\n"
     "t.smg:3:5: note: in iteration j=988 of this repeat\n"
     "t.smg:2:1: note: in iteration i=4 of this repeat")

Test(diagnostic, missing_file)
{
    sm_graph *g = NULL;
    cr_assert_eq(sm_graph_load_file("/nonexistent/dir/x.smg", NULL, 0, &g), SM_ERR_IO);
    cr_assert_str_eq(sm_last_error(), "graph file: cannot open '/nonexistent/dir/x.smg': No such file or directory; "
                                      "check the path");
    cr_assert_null(g);
}

/* ---- what files mean ---- */

static sm_graph *load(const char *src, const char *const *defs, int n_defs, sm_graph_params *params)
{
    sm_graph_load_opts o = {.defines = defs, .n_defines = n_defs};
    sm_graph *g = NULL;
    sm_status s = sm_graph_load_text(src, strlen(src), "t.smg", &o, &g, params);
    cr_assert_eq(s, SM_OK, "%s", sm_last_error());
    return g;
}

static int64_t param_int(const sm_graph_params *p, const char *name)
{
    int64_t v = -12345;
    cr_assert(sm_graph_params_int(p, name, &v), "no integer parameter %s", name);
    return v;
}

static double param_float(const sm_graph_params *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->v[i].name, name)) {
            cr_assert(p->v[i].is_float, "%s is not a float", name);
            return p->v[i].f;
        }
    cr_assert_fail("no parameter %s", name);
    return 0;
}

static sm_tensor find(const sm_graph *g, const char *name)
{
    sm_tensor t = SM_NO_TENSOR;
    cr_assert_eq(sm_graph_find(g, name, &t), SM_OK, "no tensor '%s'", name);
    return t;
}

Test(meaning, expressions)
{
    sm_graph_params p;
    sm_graph *g = load("smallmind-graph 1\n"
                       "param A = 7\n"
                       "param B = -A / 2          # integer division rounds toward zero\n"
                       "param C = 2 + 3 * 4 - (2 + 3) * 4\n"
                       "param D = 17 % 5 * -1\n"
                       "param E = A / 2.0\n"
                       "param F = sqrt(16)\n"
                       "param G = max(A, 3) * min(2, 9)\n"
                       "param H = min(1.5, 2)\n"
                       "param I = true + false * 5\n"
                       "param J = 9223372036854775807\n"
                       "param K = 1e-5\n",
                       NULL, 0, &p);
    cr_assert_eq(param_int(&p, "A"), 7);
    cr_assert_eq(param_int(&p, "B"), -3);
    cr_assert_eq(param_int(&p, "C"), -6);
    cr_assert_eq(param_int(&p, "D"), -2);
    cr_assert_float_eq(param_float(&p, "E"), 3.5, 1e-12);
    cr_assert_float_eq(param_float(&p, "F"), 4.0, 1e-12);
    cr_assert_eq(param_int(&p, "G"), 14);
    cr_assert_float_eq(param_float(&p, "H"), 1.5, 1e-12);
    cr_assert_eq(param_int(&p, "I"), 1);
    cr_assert_eq(param_int(&p, "J"), INT64_MAX);
    cr_assert_float_eq(param_float(&p, "K"), 1e-5, 1e-20);
    cr_assert_eq(p.n, 11);
    sm_graph_params_free(&p);
    sm_graph_free(g);
}

static const char defines_src[] = "smallmind-graph 1\n"
                                  "param B = 2\n"
                                  "param T = 8\n"
                                  "param C = 4 * T\n"
                                  "input x: f32[B, T, C]\n";

Test(meaning, defines_override_defaults)
{
    const char *defs[] = {"T=16", "B = 3 * 2"};
    sm_graph *g = load(defines_src, defs, 2, NULL);
    int64_t shape[SM_MAX_DIMS];
    int nd;
    sm_tensor_info(g, find(g, "x"), NULL, NULL, NULL, &nd, shape);
    cr_assert_eq(nd, 3);
    cr_assert_eq(shape[0], 6);
    cr_assert_eq(shape[1], 16);
    cr_assert_eq(shape[2], 64, "C's default is evaluated with the defined T");
    sm_graph_free(g);
}

Test(meaning, define_may_use_earlier_parameters)
{
    const char *defs[] = {"C=T+B"};
    sm_graph *g = load(defines_src, defs, 1, NULL);
    cr_assert_eq(sm_tensor_numel(g, find(g, "x")), 2 * 8 * 10);
    sm_graph_free(g);
}

Test(meaning, soft_defines_apply_only_where_declared)
{
    const char *soft[] = {"T=4", "Q=9"}, *hard[] = {"T=5"};
    sm_graph_load_opts o = {.soft_defines = soft, .n_soft_defines = 2};
    sm_graph *g = NULL;
    cr_assert_eq(sm_graph_load_text(defines_src, strlen(defines_src), "t", &o, &g, NULL), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_tensor_numel(g, find(g, "x")), 2 * 4 * 16);
    sm_graph_free(g);
    o.defines = hard; /* a -D wins over a soft define */
    o.n_defines = 1;
    cr_assert_eq(sm_graph_load_text(defines_src, strlen(defines_src), "t", &o, &g, NULL), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_tensor_numel(g, find(g, "x")), 2 * 5 * 20);
    sm_graph_free(g);
}

Test(meaning, repeat_interpolation_and_rebinding)
{
    sm_graph *g = load("smallmind-graph 1\n"
                       "param L = 3\n"
                       "input x: f32[2, 4]\n"
                       "h = scale(x, s=1)\n"
                       "repeat l in 0..L {\n"
                       "    weight blk{l}.w: f32[4, 4] init=normal(0.1 * (l + 1))\n"
                       "    weight blk{l}.b{l * 10 + 1}: f32[4] init=zeros\n"
                       "    h = linear(h, blk{l}.w, blk{l}.b{l * 10 + 1})\n"
                       "    h = gelu(h)\n"
                       "}\n"
                       "output h\n",
                       NULL, 0, NULL);
    cr_assert_eq(sm_graph_node_count(g), 1 + 3 * 2);
    cr_assert_eq(sm_graph_tensor_count(g), 1 + 1 + 3 * 4);
    sm_tensor w2 = find(g, "blk2.w");
    find(g, "blk1.b11");
    cr_assert_float_eq(g->t[w2].init_std, 0.3f, 1e-7);
    cr_assert_eq(g->t[w2].init, SM_INIT_NORMAL);
    /* h, then h.1 .. h.6: each rebinding is a new tensor; `output h` marks the last one */
    sm_tensor last = find(g, "h.6");
    cr_assert(g->t[last].is_output);
    cr_assert_eq(g->t[last].role, SM_ROLE_OUTPUT);
    cr_assert_eq(g->nodes[g->t[last].node].op, SM_OP_GELU);
    cr_assert_eq(g->nodes[g->t[find(g, "h.5")].node].in[0], find(g, "h.4"));
    cr_assert(!g->t[find(g, "h.5")].is_output);
    sm_graph_free(g);
}

Test(meaning, loop_variable_is_scoped_to_its_repeat)
{
    const char src[] = "smallmind-graph 1\n"
                       "repeat l in 0..2 {\n"
                       "}\n"
                       "input x: f32[l]\n";
    expect_error("scope", src, sizeof src - 1, NULL, 0, 0, 0, SM_ERR_FORMAT,
                 "t.smg:4:14: error: unknown parameter 'l'\n"
                 "    4 | input x: f32[l]\n"
                 "      |              ^");
}

Test(meaning, empty_repeat_range_runs_nothing)
{
    sm_graph *g = load("smallmind-graph 1\nparam L = 0\ninput x: f32[2]\nrepeat l in 0..L {\n  y = gelu(x)\n}\n",
                       NULL, 0, NULL);
    cr_assert_eq(sm_graph_node_count(g), 0);
    sm_graph_free(g);
}

Test(meaning, alias_names_an_existing_tensor)
{
    sm_graph *g = load("smallmind-graph 1\n"
                       "input x: f32[2]\n"
                       "y = gelu(x)\n"
                       "z: f32[2] = y\n"
                       "z = silu(z)\n"
                       "output z\n",
                       NULL, 0, NULL);
    cr_assert_eq(sm_graph_tensor_count(g), 3, "an alias makes no tensor");
    sm_tensor z = find(g, "z");
    cr_assert_eq(g->nodes[g->t[z].node].op, SM_OP_SILU);
    cr_assert_eq(g->nodes[g->t[z].node].in[0], find(g, "y"));
    cr_assert(g->t[z].is_output);
    sm_graph_free(g);
}

Test(meaning, quoted_names_comments_crlf_and_continuation)
{
    sm_graph *g = load("# a comment before the version line\r\n"
                       "smallmind-graph 1   # trailing comment\r\n"
                       "\r\n"
                       "input \"a b\\\"c\\\\d\\x7f{}\": f32[2, 3]\r\n"
                       "y = scale(\"a b\\\"c\\\\d\\x7f{}\",   # arguments may span lines\r\n"
                       "          s=2)\r\n",
                       NULL, 0, NULL);
    sm_tensor x = find(g, "a b\"c\\d\x7f{}");
    cr_assert_eq(g->nodes[g->t[find(g, "y")].node].in[0], x);
    cr_assert_float_eq(g->nodes[0].attrs.f[0], 2.0f, 0);
    sm_graph_free(g);
}

Test(meaning, weight_options)
{
    sm_graph *g = load("smallmind-graph 1\n"
                       "weight a: f32[2]\n"
                       "weight b: f32[2] init=ones trainable=false\n"
                       "weight c: i32[2] init=zeros\n"
                       "weight d: i32[2] init=zeros trainable=true\n"
                       "tensor e: f16[3] role=kv\n",
                       NULL, 0, NULL);
    const sm_tensor_rec *a = &g->t[find(g, "a")], *b = &g->t[find(g, "b")], *c = &g->t[find(g, "c")];
    cr_assert_eq(a->init, SM_INIT_NORMAL, "the default init is normal(0.02)");
    cr_assert_float_eq(a->init_std, 0.02f, 0);
    cr_assert(a->trainable);
    cr_assert_eq(b->init, SM_INIT_ONES);
    cr_assert(!b->trainable);
    cr_assert(!c->trainable, "integer weights are not trained by default");
    cr_assert(g->t[find(g, "d")].trainable);
    cr_assert_eq(g->t[find(g, "e")].role, SM_ROLE_KV);
    cr_assert_eq(g->t[find(g, "e")].dtype, SM_F16);
    sm_graph_free(g);
}

Test(meaning, explicit_role_survives_output_marking)
{
    sm_graph *g = load("smallmind-graph 1\n"
                       "input x: f32[2]\n"
                       "a = gelu(x) role=activation\n"
                       "b = gelu(x)\n"
                       "output a, b\n",
                       NULL, 0, NULL);
    cr_assert_eq(g->t[find(g, "a")].role, SM_ROLE_ACTIVATION);
    cr_assert(g->t[find(g, "a")].is_output);
    cr_assert_eq(g->t[find(g, "b")].role, SM_ROLE_OUTPUT);
    sm_graph_free(g);
}

Test(meaning, loss_and_grad)
{
    sm_graph *g = load("smallmind-graph 1\n"
                       "input l: f32[1]\n"
                       "weight w: f32[3]\n"
                       "lv = scale(l, s=3)\n"
                       "gw = scale(w, s=1) role=grad\n"
                       "loss lv\n"
                       "grad w = gw\n",
                       NULL, 0, NULL);
    cr_assert_eq(sm_graph_loss(g), find(g, "lv"));
    cr_assert(g->t[find(g, "lv")].is_output);
    cr_assert_eq(g->t[find(g, "w")].grad, find(g, "gw"));
    cr_assert_eq(g->t[find(g, "gw")].role, SM_ROLE_GRAD);
    sm_graph_free(g);
}

/* Every op of the table takes its attributes by the names the table gives: a call that sets each
 * attribute is either built with those values, or refused by the op's own shape rule — never by the
 * parser. Nothing here names an op, so ops added later are covered too. */
Test(meaning, every_op_and_attribute_by_table_name)
{
    for (int k = 0; k < SM_OP_COUNT; k++) {
        char src[1024], *p = src;
        const char *op = sm_op_name((sm_op_kind)k);
        p += sprintf(p, "smallmind-graph 1\ninput x: f32[2, 4, 6]\ny = %s(x", op);
        for (int s = 0; s < SM_MAX_IATTRS; s++)
            if (sm_op_iattr_name((sm_op_kind)k, s)) p += sprintf(p, ", %s=%d", sm_op_iattr_name((sm_op_kind)k, s), s % 2);
        for (int s = 0; s < SM_MAX_FATTRS; s++)
            if (sm_op_fattr_name((sm_op_kind)k, s)) p += sprintf(p, ", %s=%g", sm_op_fattr_name((sm_op_kind)k, s), 0.5 + s);
        sprintf(p, ")\n");
        sm_graph *g = NULL;
        sm_status st = sm_graph_load_string(src, "t.smg", NULL, 0, &g);
        if (st) {
            cr_assert(strstr(sm_last_error(), "t.smg:3:5: error: node 'y': ") == sm_last_error(),
                      "op %s: the error should come from the op's shape rule:\n%s", op, sm_last_error());
            continue;
        }
        const sm_node *n = &g->nodes[0];
        cr_assert_eq(n->op, (sm_op_kind)k);
        for (int s = 0; s < SM_MAX_IATTRS; s++)
            if (sm_op_iattr_name((sm_op_kind)k, s)) cr_assert_eq(n->attrs.i[s], s % 2, "op %s slot %d", op, s);
        for (int s = 0; s < SM_MAX_FATTRS; s++)
            if (sm_op_fattr_name((sm_op_kind)k, s)) cr_assert_float_eq(n->attrs.f[s], 0.5f + (float)s, 0, "op %s", op);
        sm_graph_free(g);
    }
}

Test(meaning, unset_attributes_take_the_table_defaults)
{
    sm_graph *g = load("smallmind-graph 1\ninput x: f32[2, 3]\ny = scale(x)\nz = matmul(x, x, trans_b=1)\n", NULL, 0, NULL);
    sm_attrs d = sm_op_default_attrs(SM_OP_SCALE);
    cr_assert_float_eq(g->nodes[0].attrs.f[0], d.f[0], 0);
    cr_assert_eq(g->nodes[1].attrs.i[0], sm_op_default_attrs(SM_OP_MATMUL).i[0]);
    cr_assert_eq(g->nodes[1].attrs.i[1], 1);
    sm_graph_free(g);
}

/* An integer attribute called dtype (or to) takes a dtype name, e.g. cast(x, dtype=f16). */
Test(meaning, dtype_attribute_takes_dtype_names)
{
    for (int k = 0; k < SM_OP_COUNT; k++)
        for (int s = 0; s < SM_MAX_IATTRS; s++) {
            const char *nm = sm_op_iattr_name((sm_op_kind)k, s);
            if (!nm || (strcmp(nm, "dtype") && strcmp(nm, "to"))) continue;
            char src[256];
            snprintf(src, sizeof src, "smallmind-graph 1\ninput x: f32[2, 3]\ny = %s(x, %s=bf16)\n",
                     sm_op_name((sm_op_kind)k), nm);
            sm_graph *g = NULL;
            if (sm_graph_load_string(src, "t", NULL, 0, &g)) {
                cr_assert(strstr(sm_last_error(), "node 'y'"), "%s", sm_last_error());
                continue;
            }
            cr_assert_eq(g->nodes[0].attrs.i[s], SM_BF16);
            sm_graph_free(g);
            return;
        }
    cr_assert_fail("no op of the table has an integer attribute called dtype or to (cast has one)");
}

Test(meaning, fixtures_load)
{
    const char *dir = getenv("SM_FIXTURES");
    cr_assert(dir, "SM_FIXTURES is set by ctest");
    const char *files[] = {"graphs/mlp.smg", "graphs/features.smg", "graphs/gpt-train.smg"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        sm_graph *g = NULL;
        cr_assert_eq(sm_graph_load_file(path, NULL, 0, &g), SM_OK, "%s", sm_last_error());
        sm_graph_free(g);
    }
}

/* A repeat of 2^17 statements loads, and checking each new tensor's name visits O(1) slots of the
 * graph's name index: names were once found by scanning every tensor, n^2/2 comparisons in all (an
 * 80k-statement repeat took 9 s). */
Test(meaning, large_repeat_loads_with_constant_work_per_tensor)
{
    enum { N = 1 << 17 };
    char src[256];
    snprintf(src, sizeof src,
             "smallmind-graph 1\n"
             "param N = %d\n"
             "input in: f32[4]\n"
             "x = scale(in)\n"
             "repeat i in 0..N {\n"
             "    x = scale(x, s=0.5)\n"
             "}\n"
             "output x\n",
             N);
    sm_graph *g = load(src, NULL, 0, NULL);
    cr_assert_eq(sm_graph_tensor_count(g), N + 2);
    cr_assert_gt(g->name_probes, 0, "the loader adds tensors through the name index");
    cr_assert_leq(g->name_probes, 4 * (uint64_t)(N + 2), "%llu slots visited for %d tensors",
                  (unsigned long long)g->name_probes, N + 2);
    char last[32];
    snprintf(last, sizeof last, "x.%d", N);
    cr_assert(g->t[find(g, last)].is_output, "the last rebinding of x is the output");
    sm_graph_free(g);
}

/* The parser's memory grows with the file, not faster: a quoted name's buffer once took the rest of
 * the file (100k quoted names in a 4 MB file needed over 10 GB), and every token of the file was kept
 * until the end (16M tokens, 5 GB, for a printed graph of 2^20 tensors). Now a name takes its own
 * length and the lexer holds one statement's tokens. */
Test(meaning, parse_memory_is_linear_in_the_file)
{
    enum { N = 4000 };
    size_t cap = 64 * (size_t)N + 64, len = 0;
    char *text = malloc(cap);
    cr_assert(text);
    len += (size_t)snprintf(text + len, cap - len, "smallmind-graph 1\ninput \"x 0\": f32[4]\n");
    for (int i = 1; i <= N; i++)
        len += (size_t)snprintf(text + len, cap - len, "\"x %d\": f32[4] = scale(\"x %d\", s=0.5)\n", i, i - 1);
    gp_ctx c = {0};
    gp_src src = {.name = "q.smg", .text = text, .len = len};
    gp_file f;
    cr_assert_eq(gp_parse_file(&c, &src, &f), SM_OK, "%s", sm_last_error());
    cr_assert_eq(f.n_stmts, N + 1);
    size_t bytes = sm_pool_bytes(&c.arena);
    cr_assert_leq(bytes, 32 * len, "%zu bytes of syntax tree for a %zu-byte file", bytes, len);
    sm_pool_free(&c.arena);
    free(text);
}

/* Extreme attribute values reach the ops' shape rules straight from a file: each must be an error
 * at its line, never undefined behaviour (the sanitizer build checks that part). */
Test(meaning, extreme_attributes_are_errors)
{
    static const char *const bodies[] = {
        "y = reshape(x, d0=4611686018427387904, d1=4)",
        "y = reshape(x, d0=3037000500, d1=3037000500, d2=4)",
        "y = reshape(x, d0=-1, d1=-9223372036854775807)",
        "y = slice(x, axis=1, start=9223372036854775807, len=2)",
        "y = slice(x, axis=-9223372036854775807, start=0, len=1)",
        "y = sum(x, axis=-9223372036854775807)",
        "y = permute(x, p0=9223372036854775807, p1=-1)",
        "y = concat(x, x, axis=9223372036854775807)",
        "y = attention(x, n_head=0)",
        "y = rope(x, n_head=-9223372036854775807)",
        "y = cast(x, dtype=9223372036854775807)",
        "y = matmul(x, x, trans_a=0, trans_b=0)",
        "y = pad(x, axis=0, start=9223372036854775807, total=9223372036854775807)",
        "y = pad(x, axis=1, start=1, total=-9223372036854775807)",
        "y = expand(x, d0=4611686018427387904, d1=4, axis=0)",
        "y = fill(d0=1099511627776, d1=1099511627776, value=1)",
        "y = embedding_bwd(ids, x, vocab=9223372036854775807)",
        "y = sum_to(x, ndim=-9223372036854775807)",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char src[512];
        snprintf(src, sizeof src, "smallmind-graph 1\ninput x: f32[2, 3]\ninput ids: i32[2, 3]\n%s\n", bodies[i]);
        sm_graph *g = NULL;
        cr_assert_neq(sm_graph_load_string(src, "t.smg", NULL, 0, &g), SM_OK, "%s", bodies[i]);
        cr_assert_null(g);
        cr_assert(strncmp(sm_last_error(), "t.smg:4:", 8) == 0, "%s:\n%s", bodies[i], sm_last_error());
    }
}

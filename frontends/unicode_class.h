/* unicode_class.h — the Unicode character classes the GPT-2 pre-tokenizer needs (\p{L}, \p{N}, \s),
 * as generated range tables (unicode_class.c). */
#ifndef SM_UNICODE_CLASS_H
#define SM_UNICODE_CLASS_H

#include <stdbool.h>
#include <stdint.h>

bool sm_unicode_is_letter(uint32_t cp);   /* general category L* */
bool sm_unicode_is_number(uint32_t cp);   /* general category N* */
bool sm_unicode_is_space(uint32_t cp);    /* White_Space, like the regex module's \s */

#endif

/* The dirty-page scan of a live move's pre-copy, in one call: which pages of linear memory
 * differ from the shadow copy of what the target has. The last round's scan happens while
 * the app is stopped (it is downtime), so it runs at memory speed, not at one ctypes call
 * per page. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Write the indices of the pages (``page`` bytes each) in [first, end) where ``mem`` and
 * ``shadow`` differ to ``out``; return how many. */
uint32_t fog_dirty_pages(const uint8_t *mem, const uint8_t *shadow, uint32_t first,
                         uint32_t end, uint32_t page, uint32_t *out)
{
    uint32_t n = 0;
    for (uint32_t i = first; i < end; i++) {
        size_t at = (size_t)i * page;
        if (memcmp(mem + at, shadow + at, page) != 0)
            out[n++] = i;
    }
    return n;
}

/* snap_service: a reactor whose state grows over many calls (heap, statics, an open file),
 * for service snapshot/restore tests. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t *items;
static uint32_t count, cap;
static uint64_t digest = 1469598103934665603ull;
static FILE *journal;

__attribute__((export_name("push"))) uint32_t push(uint32_t v)
{
    if (count == cap) {
        cap = cap ? cap * 2 : 16;
        items = realloc(items, cap * sizeof *items);
    }
    items[count++] = v;
    digest = (digest ^ v) * 1099511628211ull;
    if (journal)
        fprintf(journal, "push %u\n", v);
    return count;
}

__attribute__((export_name("sum"))) uint64_t sum(void)
{
    uint64_t s = 0;
    for (uint32_t i = 0; i < count; i++)
        s += items[i];
    return s;
}

__attribute__((export_name("digest"))) uint64_t get_digest(void) { return digest; }

__attribute__((export_name("open_journal"))) int open_journal(void)
{
    journal = fopen("/data/journal.txt", "a");
    return journal != NULL;
}

__attribute__((export_name("flush_journal"))) int flush_journal(void)
{
    return journal ? fflush(journal) : -1;
}

/* Cold start: the smallest useful command; `fog bench runtime` times the whole process. */
#include <stdio.h>

int main(void)
{
    puts("hello");
    return 0;
}

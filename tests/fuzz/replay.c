/*
 * Replays saved fuzz inputs without libFuzzer: feeds every file of the directories given on
 * the command line to the target's LLVMFuzzerTestOneInput, in name order. The targets abort
 * on a wrong answer, so a regression found once by fuzzing fails every later build's tests.
 * A directory that cannot be read or holds no input is an error: a corpus that was renamed
 * or lost must not turn the replay into a test that always passes.
 *   fuzz_replay_<target> DIR...
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input being run, named when a target's check aborts (or a fault ends the process). */
static const char *current;

static void name_input(int sig)
{
    static const char what[] = "fuzz replay: failed on input ";
    if (current != NULL) {
        ssize_t ignored = write(2, what, sizeof what - 1);
        ignored = write(2, current, strlen(current));
        ignored = write(2, "\n", 1);
        (void)ignored;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The whole file at path into a fresh buffer (*size bytes; never NULL on success). */
static uint8_t *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        uint8_t *bigger = realloc(buf, cap * 2);
        if (bigger == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    if (buf != NULL && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = n;
    return buf;
}

/* Runs every regular file of dir; returns how many, or -1 on an error. */
static long replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        perror(dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            char **more = realloc(names, cap * sizeof *names);
            if (more == NULL) {
                closedir(d);
                return -1;
            }
            names = more;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        if (names[n] == NULL) {
            closedir(d);
            return -1;
        }
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof *names, by_name);
    long ran = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (ran >= 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            size_t size;
            uint8_t *data = read_all(names[i], &size);
            if (data == NULL) {
                perror(names[i]);
                ran = -1;
            } else {
                current = names[i];
                LLVMFuzzerTestOneInput(data, size);
                current = NULL;
                free(data);
                ran++;
            }
        }
        free(names[i]);
    }
    free(names);
    return ran;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR...\n", argv[0]);
        return 2;
    }
    signal(SIGABRT, name_input);
    signal(SIGSEGV, name_input);
    signal(SIGFPE, name_input);
    for (int i = 1; i < argc; i++) {
        long n = replay_dir(argv[i]);
        if (n < 0)
            return 1;
        if (n == 0) {
            fprintf(stderr, "%s: no inputs\n", argv[i]);
            return 1;
        }
        printf("%s: %ld inputs replayed\n", argv[i], n);
    }
    return 0;
}

/*
 * strackt-decrypt: decrypts a strackt snapshot (docs/FORMAT.md, version 1) with the team secret key.
 * It uses nothing of strackt, only libsodium (Debian: libsodium-dev), so a customer can read their
 * backups without any strackt software. Same command line and messages as strackt-decrypt.py.
 *
 *   cc -O2 -o strackt-decrypt strackt-decrypt.c -lsodium
 *   ./strackt-decrypt --key-file team.key data.tar.zst.strackt | zstd -d | tar -x --numeric-owner
 *   ./strackt-decrypt --fingerprint --key-file team.key
 *
 * For version 2 (docs/FORMAT.md, "Version 2"), the steps strackt-assemble-v2.py --decryptor takes
 * from it in place of PyNaCl: a pack's checked index, one blob's sealed message, the dedup key.
 *
 *   ./strackt-decrypt --key-file team.key --pack-index PACK      (lines: id offset length raw-length)
 *   ./strackt-decrypt --key-file team.key --blob PACK OFFSET LENGTH ID   (encoding byte, payload)
 *   ./strackt-decrypt --key-file team.key --dedup-key                   (64 hex digits)
 *
 * Exit status 0, or 1 with one line on stderr: "strackt-decrypt: <kind>: <message>". After a failure
 * the output holds only chunks that authenticated, but it is incomplete: discard all of it.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#define HEADER_BYTES 136
#define MAX_CHUNK_SIZE (16u * 1024 * 1024)
#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define KEY_FILE_MAX 4096
/* base32 of 32 key bytes and 4 checksum bytes, unpadded */
#define KEY_DIGITS 58

static const char usage[] =
    "usage: strackt-decrypt --key-file KEYFILE [INPUT]\n"
    "       strackt-decrypt --fingerprint --key-file KEYFILE\n"
    "       strackt-decrypt --key-file KEYFILE --pack-index PACK\n"
    "       strackt-decrypt --key-file KEYFILE --blob PACK OFFSET LENGTH ID\n"
    "       strackt-decrypt --key-file KEYFILE --dedup-key\n"
    "Decrypts a strackt snapshot from INPUT (default: standard input) to standard output; or, for\n"
    "version 2, prints a pack's index, writes one blob's message, or prints the dedup key.\n";
static const char base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char key_id_context[] = "strackt-team-key-id-v1";

__attribute__((noreturn, format(printf, 2, 3))) static void fail(const char *kind, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "strackt-decrypt: %s: ", kind);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
    exit(1);
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int is_blank(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static void read_secret_key(const char *path, unsigned char secret[32]) {
    char text[KEY_FILE_MAX + 1], digits[KEY_FILE_MAX];
    FILE *f = fopen(path, "rb");
    if (!f) fail("bad_key", "cannot read key file %s: %s", path, strerror(errno));
    size_t len = fread(text, 1, sizeof text, f);
    if (ferror(f)) fail("bad_key", "cannot read key file %s: %s", path, strerror(errno));
    fclose(f);
    if (len > KEY_FILE_MAX) fail("bad_key", "key file %s is too large to hold a strackt team key", path);

    size_t i = 0, n = 0;
    while (i < len && is_blank(text[i])) i++;
    if (len - i < 4 || strncasecmp(text + i, "STK1", 4) != 0)
        fail("bad_key", "not a strackt team key: it must start with STK1-");
    for (i += 4; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (is_blank(c) || c == '-') continue;
        if (c == 0 || !strchr(base32, toupper(c))) {
            if (isprint(c)) fail("bad_key", "not a strackt team key: unexpected character '%c'", c);
            fail("bad_key", "not a strackt team key: unexpected byte 0x%02x", c);
        }
        digits[n++] = (char)toupper(c);
    }
    if (n != KEY_DIGITS) fail("bad_key", "not a strackt team key: wrong length (a character missing or extra?)");

    /* The bits past the last whole byte are padding: ignored, as RFC 4648 decoders do. */
    unsigned char raw[36], hash[crypto_hash_sha256_BYTES];
    unsigned acc = 0, bits = 0;
    size_t out = 0;
    for (i = 0; i < n; i++) {
        acc = acc << 5 | (unsigned)(strchr(base32, digits[i]) - base32);
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            raw[out++] = (unsigned char)(acc >> bits);
        }
    }
    crypto_hash_sha256(hash, raw, 32);
    if (memcmp(hash, raw + 32, 4) != 0) fail("bad_key", "the team key has a typo: its checksum does not match");
    memcpy(secret, raw, 32);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(text, sizeof text);
    sodium_memzero(digits, sizeof digits);
}

static void key_id_of(const unsigned char public_key[32], unsigned char id[16]) {
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, 16);
    crypto_generichash_update(&state, (const unsigned char *)key_id_context, strlen(key_id_context));
    crypto_generichash_update(&state, public_key, 32);
    crypto_generichash_final(&state, id, 16);
}

/* "4cf7-d762-...": 8 groups of 4 hex digits, 39 characters and a NUL. */
static void fingerprint(const unsigned char id[16], char out[40]) {
    char *p = out;
    for (int i = 0; i < 16; i++) {
        p += sprintf(p, "%02x", id[i]);
        if (i % 2 == 1 && i < 15) *p++ = '-';
    }
}

static size_t read_up_to(FILE *in, unsigned char *buf, size_t n) {
    size_t got = fread(buf, 1, n, in);
    if (got < n && ferror(in)) fail("io_error", "reading the input: %s", strerror(errno));
    return got;
}

static void write_all(const unsigned char *buf, size_t n) {
    if (n && fwrite(buf, 1, n, stdout) != n) fail("io_error", "writing the output: %s", strerror(errno));
}

static uint32_t open_header(const unsigned char *header, size_t got, const unsigned char secret[32],
                            const unsigned char public_key[32], crypto_secretstream_xchacha20poly1305_state *state) {
    if (memcmp(header, "STRKSNAP", got < 8 ? got : 8) != 0)
        fail("not_a_snapshot", "bad magic: this is not a strackt snapshot");
    if (got < HEADER_BYTES) fail("truncated", "the input ends inside the %d-byte header", HEADER_BYTES);
    if (header[8] != 1) fail("unsupported_version", "format version %u (this tool reads version 1)", header[8]);
    if (header[9] != 1 || header[10] > 1 || header[11] != 0)
        fail("header_altered", "unknown cipher, compression or flags in the header");
    uint32_t chunk_size = be32(header + 12);
    if (chunk_size < 1 || chunk_size > MAX_CHUNK_SIZE)
        fail("header_altered", "chunk size %u out of range in the header", (unsigned)chunk_size);

    /* Checked before any decryption, so a wrong key is never mistaken for tampering. */
    unsigned char id[16];
    key_id_of(public_key, id);
    if (memcmp(id, header + 16, 16) != 0) {
        char theirs[40], ours[40];
        fingerprint(header + 16, theirs);
        fingerprint(id, ours);
        fail("wrong_key", "the snapshot was sealed to team key %s; the key file holds %s", theirs, ours);
    }
    unsigned char data_key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    if (crypto_box_seal_open(data_key, header + 32, 80, public_key, secret) != 0)
        fail("header_altered", "the sealed data key does not open");
    if (crypto_secretstream_xchacha20poly1305_init_pull(state, header + 112, data_key) != 0)
        fail("header_altered", "the stream header is invalid");
    sodium_memzero(data_key, sizeof data_key);
    return chunk_size;
}

static void decrypt(FILE *in, const unsigned char secret[32], const unsigned char public_key[32]) {
    unsigned char header[HEADER_BYTES], prefix[4], tag;
    crypto_secretstream_xchacha20poly1305_state state;
    size_t got = read_up_to(in, header, HEADER_BYTES);
    uint32_t chunk_size = open_header(header, got, secret, public_key, &state);
    uint32_t limit = chunk_size + ABYTES;
    /* One chunk at a time: memory is bounded by the chunk size, whatever the size of the input. */
    unsigned char *frame = malloc(limit), *plain = malloc(chunk_size);
    if (!frame || !plain) fail("io_error", "out of memory for a chunk of %u bytes", (unsigned)chunk_size);

    for (unsigned long index = 0;; index++) {
        if (read_up_to(in, prefix, 4) < 4) {
            if (index == 0) fail("truncated", "the input ends after the header, without a final chunk");
            fail("truncated", "the input ends after chunk %lu, without a final chunk", index - 1);
        }
        uint32_t n = be32(prefix);
        if (n < ABYTES || n > limit)
            fail("corrupt_framing", "chunk %lu claims %u bytes, not %u to %u", index, (unsigned)n, (unsigned)ABYTES,
                 (unsigned)limit);
        if (read_up_to(in, frame, n) < n) fail("truncated", "the input ends inside chunk %lu", index);
        unsigned long long plain_len;
        /* The header rides as the first chunk's additional data: this is what authenticates it. */
        if (crypto_secretstream_xchacha20poly1305_pull(&state, plain, &plain_len, &tag, frame, n,
                                                       index == 0 ? header : NULL, index == 0 ? HEADER_BYTES : 0) != 0) {
            if (index == 0) fail("header_altered", "the header or the first chunk failed authentication");
            fail("chunk_altered", "chunk %lu failed authentication: altered, dropped or reordered", index);
        }
        if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
            if (read_up_to(in, prefix, 1) > 0) fail("trailing_data", "bytes follow the final chunk");
            write_all(plain, plain_len);
            break;
        }
        if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
            fail("chunk_altered", "chunk %lu has an unknown tag %u", index, tag);
        write_all(plain, plain_len);
    }
    if (fflush(stdout) != 0) fail("io_error", "writing the output: %s", strerror(errno));
    free(frame);
    free(plain);
}

/* Version 2 (docs/FORMAT.md, "Pack"): preamble, blobs back to back, sealed index, trailer. */
#define PACK_PREAMBLE 112
#define PACK_TRAILER 12
#define PACK_ENTRY 44
#define STREAM_HEADER crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define BLOB_MIN (STREAM_HEADER + ABYTES + 1)
static const char dedup_context[] = "strackt-dedup-key-v1";

struct pack {
    FILE *f;
    const char *path;
    long size;
    unsigned char preamble[PACK_PREAMBLE];
    unsigned char data_key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
};

static void read_at(struct pack *p, long at, unsigned char *buf, size_t n) {
    if (fseek(p->f, at, SEEK_SET) != 0 || fread(buf, 1, n, p->f) != n)
        fail("truncated", "%s: cannot read %zu bytes at %ld", p->path, n, at);
}

/* One secretstream message that must be final, with `ad` as additional data; its length, or -1. */
static long open_once(const unsigned char key[32], const unsigned char *sealed, size_t n, const unsigned char *ad,
                      size_t ad_len, unsigned char *out) {
    crypto_secretstream_xchacha20poly1305_state state;
    unsigned long long len;
    unsigned char tag;
    if (n < STREAM_HEADER + ABYTES || crypto_secretstream_xchacha20poly1305_init_pull(&state, sealed, key) != 0)
        return -1;
    if (crypto_secretstream_xchacha20poly1305_pull(&state, out, &len, &tag, sealed + STREAM_HEADER, n - STREAM_HEADER,
                                                   ad, ad_len) != 0 ||
        tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL)
        return -1;
    return (long)len;
}

/* The pack's preamble checked and its data key opened, as strackt-assemble-v2.py does. */
static void open_pack(struct pack *p, const char *path, const unsigned char secret[32],
                      const unsigned char public_key[32]) {
    p->path = path;
    if (!(p->f = fopen(path, "rb"))) fail("io_error", "cannot open %s: %s", path, strerror(errno));
    if (fseek(p->f, 0, SEEK_END) != 0 || (p->size = ftell(p->f)) < 0)
        fail("io_error", "cannot size %s: %s", path, strerror(errno));
    rewind(p->f);
    size_t got = read_up_to(p->f, p->preamble, PACK_PREAMBLE);
    if (got < 8 || memcmp(p->preamble, "STRKPACK", 8) != 0) fail("not_a_pack", "%s: not a strackt pack", path);
    static const unsigned char zero[6];
    if (got < PACK_PREAMBLE || p->preamble[8] != 2 || p->preamble[9] != 1 || memcmp(p->preamble + 10, zero, 6) != 0)
        fail("header_altered", "%s: unknown version, cipher or flags", path);
    unsigned char id[16];
    key_id_of(public_key, id);
    if (memcmp(id, p->preamble + 16, 16) != 0) {
        char theirs[40];
        fingerprint(p->preamble + 16, theirs);
        fail("wrong_key", "%s: sealed to team key %s", path, theirs);
    }
    if (crypto_box_seal_open(p->data_key, p->preamble + 32, 80, public_key, secret) != 0)
        fail("header_altered", "%s: the sealed data key does not open", path);
}

/* Prints the pack's index, each entry checked in place: "<id> <offset> <length> <raw length>". */
static void pack_index(const char *path, const unsigned char secret[32], const unsigned char public_key[32]) {
    struct pack p;
    open_pack(&p, path, secret, public_key);
    unsigned char trailer[PACK_TRAILER];
    if (p.size < PACK_PREAMBLE + PACK_TRAILER) fail("truncated", "%s: no trailer", path);
    read_at(&p, p.size - PACK_TRAILER, trailer, PACK_TRAILER);
    if (memcmp(trailer + 4, "STRKPEND", 8) != 0) fail("truncated", "%s: no trailer", path);
    uint32_t n = be32(trailer);
    if ((uint64_t)n > (uint64_t)(p.size - PACK_PREAMBLE - PACK_TRAILER))
        fail("truncated", "%s: shorter than its index says", path);
    unsigned char *sealed = malloc(n ? n : 1), *index = malloc(n ? n : 1);
    if (!sealed || !index) fail("io_error", "out of memory for an index of %u bytes", (unsigned)n);
    read_at(&p, p.size - PACK_TRAILER - n, sealed, n);
    long len = open_once(p.data_key, sealed, n, p.preamble, PACK_PREAMBLE, index);
    if (len < 0) fail("header_altered", "%s: the index or preamble failed authentication", path);
    /* In 64 bits: a crafted count times 44 must not wrap to the index's length. */
    if (len < 4 || (uint64_t)len != 4 + (uint64_t)be32(index) * PACK_ENTRY)
        fail("corrupt_framing", "%s: index of the wrong length", path);
    uint32_t count = be32(index);
    uint64_t expected = PACK_PREAMBLE;
    for (uint32_t k = 0; k < count; k++) {
        const unsigned char *e = index + 4 + (size_t)k * PACK_ENTRY;
        uint32_t offset = be32(e + 32), length = be32(e + 36), raw = be32(e + 40);
        if (offset != expected || length < BLOB_MIN || length > BLOB_MIN + MAX_CHUNK_SIZE)
            fail("corrupt_framing", "%s: index entry %u out of place", path, (unsigned)k);
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, e, 32);
        if (printf("%s %u %u %u\n", hex, (unsigned)offset, (unsigned)length, (unsigned)raw) < 0)
            fail("io_error", "writing the output: %s", strerror(errno));
        expected += length;
    }
    if (expected != (uint64_t)(p.size - n - PACK_TRAILER))
        fail("corrupt_framing", "%s: the index does not cover every blob byte", path);
    if (fflush(stdout) != 0) fail("io_error", "writing the output: %s", strerror(errno));
    sodium_memzero(p.data_key, sizeof p.data_key);
    free(sealed);
    free(index);
    fclose(p.f);
}

static unsigned long number(const char *text, const char *what) {
    char *end;
    errno = 0;
    unsigned long n = strtoul(text, &end, 10);
    if (!*text || *end || errno || n > 0xffffffffUL) fail("usage", "%s must be a number, not %s", what, text);
    return n;
}

/* Writes the message of the blob at OFFSET (its encoding byte, then its payload), once it authenticates
   under the pack's data key with its chunk id; the caller decodes it and checks the chunk's hash. */
static void blob(char **args, const unsigned char secret[32], const unsigned char public_key[32]) {
    struct pack p;
    open_pack(&p, args[0], secret, public_key);
    unsigned long offset = number(args[1], "OFFSET"), length = number(args[2], "LENGTH");
    unsigned char id[32];
    if (strlen(args[3]) != 64 || sodium_hex2bin(id, sizeof id, args[3], 64, NULL, NULL, NULL) != 0)
        fail("usage", "ID must be a chunk id: 64 hex digits");
    if (length < BLOB_MIN || length > BLOB_MIN + MAX_CHUNK_SIZE || (uint64_t)offset + length > (uint64_t)p.size)
        fail("corrupt_framing", "%s: no blob of %lu bytes at %lu", args[0], length, offset);
    unsigned char *sealed = malloc(length), *message = malloc(length);
    if (!sealed || !message) fail("io_error", "out of memory for a blob of %lu bytes", length);
    read_at(&p, (long)offset, sealed, length);
    long len = open_once(p.data_key, sealed, length, id, sizeof id, message);
    if (len < 1) fail("blob_altered", "%s: blob %s failed authentication", args[0], args[3]);
    write_all(message, (size_t)len);
    if (fflush(stdout) != 0) fail("io_error", "writing the output: %s", strerror(errno));
    sodium_memzero(p.data_key, sizeof p.data_key);
    free(sealed);
    free(message);
    fclose(p.f);
}

int main(int argc, char **argv) {
    const char *key_file = NULL, *source = NULL, *mode = NULL;
    char *inputs_of[5];
    int show_fingerprint = 0, options_done = 0, inputs = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && (!strcmp(arg, "-h") || !strcmp(arg, "--help"))) {
            fputs(usage, stdout);
            return 0;
        } else if (!options_done && !strcmp(arg, "--fingerprint")) {
            show_fingerprint = 1;
        } else if (!options_done &&
                   (!strcmp(arg, "--pack-index") || !strcmp(arg, "--blob") || !strcmp(arg, "--dedup-key"))) {
            if (mode) fail("usage", "%s and %s do not go together", mode, arg);
            mode = arg;
        } else if (!options_done && !strcmp(arg, "--key-file")) {
            if (++i == argc) fail("usage", "--key-file needs a file name");
            key_file = argv[i];
        } else if (!options_done && !strncmp(arg, "--key-file=", 11)) {
            key_file = arg + 11;
        } else if (!options_done && !strcmp(arg, "--")) {
            options_done = 1;
        } else if (!options_done && arg[0] == '-' && arg[1] != 0) {
            fail("usage", "unknown option %s (see --help)", arg);
        } else {
            source = arg;
            if (inputs < 5) inputs_of[inputs] = argv[i];
            inputs++;
        }
    }
    if (!key_file || !*key_file) fail("usage", "--key-file KEYFILE is required (see --help)");
    if (mode && show_fingerprint) fail("usage", "--fingerprint and %s do not go together", mode);
    int wanted = show_fingerprint               ? 0
                 : !mode                        ? 1
                 : !strcmp(mode, "--blob")      ? 4
                 : !strcmp(mode, "--pack-index") ? 1
                                                : 0;
    if (inputs > wanted) fail("usage", "too many arguments (see --help)");
    if (mode && inputs < wanted) fail("usage", "%s needs %d argument(s) (see --help)", mode, wanted);
    if (sodium_init() < 0) fail("io_error", "libsodium failed to initialise");
    /* A closed pipe downstream (tar stopped) becomes a reported write error rather than a silent death. */
    signal(SIGPIPE, SIG_IGN);

    unsigned char secret[32], public_key[32];
    read_secret_key(key_file, secret);
    crypto_scalarmult_base(public_key, secret);
    if (show_fingerprint) {
        unsigned char id[16];
        char text[40];
        key_id_of(public_key, id);
        fingerprint(id, text);
        printf("%s\n", text);
        if (fflush(stdout) != 0) fail("io_error", "writing the output: %s", strerror(errno));
        return 0;
    }
    if (mode && !strcmp(mode, "--dedup-key")) {
        unsigned char dedup[32];
        char hex[65];
        crypto_generichash(dedup, sizeof dedup, (const unsigned char *)dedup_context, strlen(dedup_context), secret,
                           sizeof secret);
        sodium_bin2hex(hex, sizeof hex, dedup, sizeof dedup);
        printf("%s\n", hex);
        sodium_memzero(dedup, sizeof dedup);
        if (fflush(stdout) != 0) fail("io_error", "writing the output: %s", strerror(errno));
        return 0;
    }
    if (mode && !strcmp(mode, "--pack-index")) {
        pack_index(inputs_of[0], secret, public_key);
        return 0;
    }
    if (mode) {
        blob(inputs_of, secret, public_key);
        return 0;
    }
    FILE *in = stdin;
    if (source && strcmp(source, "-") != 0 && !(in = fopen(source, "rb")))
        fail("io_error", "cannot open %s: %s", source, strerror(errno));
    decrypt(in, secret, public_key);
    sodium_memzero(secret, sizeof secret);
    return 0;
}

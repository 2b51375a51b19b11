/*
 * netupdate - clock and firmware-update client of a home router (clean control).
 *
 * Talks to the network a lot (NTP over UDP, HTTP to the vendor's update
 * server, a firmware download) but reads no personal data: a triage tool
 * must not call it a backdoor just because it opens sockets.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NTP_SERVER "pool.ntp.org"
#define NTP_PORT "123"
#define NTP_UNIX_OFFSET 2208988800UL
#define UPDATE_HOST "update.example-vendor.com"
#define UPDATE_URL "https://update.example-vendor.com/fw/latest.json"
#define VERSION_FILE "/etc/fw_version"
#define DOWNLOAD_PATH "/tmp/fw-update.bin"

static int open_socket(const char *host, const char *port, int type)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = type}, *res, *ai;
    int fd = -1;

    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* SNTP (RFC 4330): one client request, the transmit timestamp of the answer. */
static int ntp_sync(void)
{
    uint8_t packet[48] = {0x1b};     /* LI 0, version 3, mode 3 (client) */
    struct timeval tv = {.tv_sec = 5};
    uint32_t seconds;
    int fd = open_socket(NTP_SERVER, NTP_PORT, SOCK_DGRAM);

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (send(fd, packet, sizeof packet, 0) != sizeof packet
        || recv(fd, packet, sizeof packet, 0) != sizeof packet) {
        close(fd);
        return -1;
    }
    close(fd);
    memcpy(&seconds, packet + 40, sizeof seconds);
    tv.tv_sec = (time_t)(ntohl(seconds) - NTP_UNIX_OFFSET);
    tv.tv_usec = 0;
    return settimeofday(&tv, NULL);
}

/*
 * GET a path from the update server; the body (after the headers) goes to out.
 * The manifest URL is published as https but fetched over plain HTTP, a
 * common vendor flaw (integrity, not privacy).
 */
static long http_get(const char *path, FILE *out)
{
    char buf[4096], *body;
    long total = 0;
    ssize_t n;
    int fd = open_socket(UPDATE_HOST, "80", SOCK_STREAM), in_body = 0;

    if (fd < 0)
        return -1;
    n = snprintf(buf, sizeof buf, "GET %s HTTP/1.1\r\nHost: %s\r\n"
                 "User-Agent: netupdate/1.4\r\nConnection: close\r\n\r\n", path, UPDATE_HOST);
    if (send(fd, buf, (size_t)n, 0) != n) {
        close(fd);
        return -1;
    }
    while ((n = recv(fd, buf, sizeof buf - 1, 0)) > 0) {
        buf[n] = '\0';
        body = buf;
        if (!in_body) {
            if (!(body = strstr(buf, "\r\n\r\n")))
                continue;
            body += 4;
            in_body = 1;
        }
        total += (long)fwrite(body, 1, (size_t)(buf + n - body), out);
    }
    close(fd);
    return total;
}

/* "1.4.2" style versions compared field by field. */
static int version_newer(const char *candidate, const char *installed)
{
    unsigned int a[3] = {0}, b[3] = {0};
    int i;

    sscanf(candidate, "%u.%u.%u", &a[0], &a[1], &a[2]);
    sscanf(installed, "%u.%u.%u", &b[0], &b[1], &b[2]);
    for (i = 0; i < 3; i++)
        if (a[i] != b[i])
            return a[i] > b[i];
    return 0;
}

/* Minimal lookup of a string field in the manifest: "key": "value". */
static int json_field(const char *json, const char *key, char *out, size_t size)
{
    char pattern[64];
    const char *p, *end;

    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    if (!(p = strstr(json, pattern)) || !(p = strchr(p + strlen(pattern), '"')))
        return -1;
    p++;
    if (!(end = strchr(p, '"')) || (size_t)(end - p) >= size)
        return -1;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
    return 0;
}

static int check_update(void)
{
    char manifest[2048] = "", installed[32] = "0.0.0", latest[32], image[256];
    FILE *f = fmemopen(manifest, sizeof manifest - 1, "w"), *version;
    const char *path = strstr(UPDATE_URL, UPDATE_HOST) + strlen(UPDATE_HOST);

    if (!f || http_get(path, f) <= 0) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    if ((version = fopen(VERSION_FILE, "r"))) {
        if (fgets(installed, sizeof installed, version))
            installed[strcspn(installed, "\r\n")] = '\0';
        fclose(version);
    }
    if (json_field(manifest, "version", latest, sizeof latest) != 0
        || json_field(manifest, "image", image, sizeof image) != 0
        || !version_newer(latest, installed))
        return 0;
    printf("netupdate: firmware %s available (installed %s)\n", latest, installed);
    if (!(f = fopen(DOWNLOAD_PATH, "wb")))
        return -1;
    if (http_get(image, f) <= 0) {
        fclose(f);
        unlink(DOWNLOAD_PATH);
        return -1;
    }
    fclose(f);
    printf("netupdate: downloaded to %s, flash with sysupgrade\n", DOWNLOAD_PATH);
    return 1;
}

int main(int argc, char **argv)
{
    int only_time = argc > 1 && strcmp(argv[1], "--time") == 0;

    if (ntp_sync() != 0)
        fprintf(stderr, "netupdate: NTP sync with %s failed\n", NTP_SERVER);
    if (only_time)
        return 0;
    return check_update() < 0 ? 1 : 0;
}

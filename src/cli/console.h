/* SPDX-License-Identifier: Apache-2.0 */
/* The terminal side of the serial console: raw mode, the Ctrl-A escape,
 * signals, and the loop that feeds stdin to the guest until it stops. */
#ifndef VIREO_CLI_CONSOLE_H
#define VIREO_CLI_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

enum console_end { CONSOLE_STOPPED, CONSOLE_QUIT, CONSOLE_SIGNAL };

/* Blocks SIGINT/SIGTERM/SIGHUP (so vCPU threads inherit the mask and the
 * loop receives them through a signalfd) and puts a terminal stdin into raw
 * mode. Call before creating the VM; console_restore undoes both. */
int console_prepare(int in_fd);
void console_restore(void);

/* Runs until the VM asks to stop, the user types Ctrl-A x, or a signal
 * arrives; the two last request a stop of the VM themselves. */
enum console_end console_loop(struct vm *vm, int in_fd);

/* Waits until fd is readable; false when SIGINT/SIGTERM/SIGHUP came first. */
bool console_wait_fd(int fd);

/* Escape-sequence filter, separate for unit tests. Copies the bytes for the
 * guest from in to out (out must hold len bytes) and returns how many; sets
 * *quit when Ctrl-A x was seen (bytes after it are dropped). */
struct console_escape {
	bool pending;   /* the previous byte was Ctrl-A */
};
size_t console_filter(struct console_escape *st, const uint8_t *in, size_t len, uint8_t *out,
		      bool *quit);

#endif

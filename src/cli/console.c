/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/console.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "vmm/vm.h"

#define ESCAPE_CHAR 0x01 /* Ctrl-A */

/* The terminal state to restore, kept at file scope because a fatal-signal
 * handler must reach it; written once before any thread starts. */
static struct termios saved_tio;
static int saved_fd = -1;
static sigset_t saved_mask;

static void restore_tty(void)
{
	if (saved_fd >= 0)
		tcsetattr(saved_fd, TCSAFLUSH, &saved_tio);
}

static void fatal_signal(int sig)
{
	restore_tty();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_fatal_handlers(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGQUIT };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fatal_signal;
	sa.sa_flags = SA_RESETHAND;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

int console_prepare(int in_fd)
{
	sigset_t set;
	struct termios raw;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, &saved_mask);
	if (!isatty(in_fd) || tcgetattr(in_fd, &saved_tio) < 0)
		return 0;
	saved_fd = in_fd;
	install_fatal_handlers();
	raw = saved_tio;
	cfmakeraw(&raw);
	raw.c_oflag |= OPOST | ONLCR; /* keep guest "\n" readable on the host side */
	if (tcsetattr(in_fd, TCSAFLUSH, &raw) < 0) {
		saved_fd = -1;
		return -errno;
	}
	return 0;
}

void console_restore(void)
{
	restore_tty();
	saved_fd = -1;
	pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
}

size_t console_filter(struct console_escape *st, const uint8_t *in, size_t len, uint8_t *out,
		      bool *quit)
{
	size_t n = 0;

	*quit = false;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];
		if (!st->pending) {
			if (c == ESCAPE_CHAR)
				st->pending = true;
			else
				out[n++] = c;
			continue;
		}
		st->pending = false;
		if (c == 'x' || c == 'X') {
			*quit = true;
			return n;
		}
		if (c != ESCAPE_CHAR) /* unknown escape: pass both through */
			out[n++] = ESCAPE_CHAR;
		out[n++] = c;
	}
	return n;
}

struct pending_input {
	uint8_t buf[256];
	size_t off, len;
};

/* Reads new input if the previous batch was delivered; returns false at EOF. */
static bool read_input(int fd, struct console_escape *esc, struct pending_input *p, bool *quit)
{
	uint8_t raw[sizeof(p->buf)];
	ssize_t n = read(fd, raw, sizeof(raw));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	p->off = 0;
	p->len = console_filter(esc, raw, (size_t)n, p->buf, quit);
	return true;
}

static int open_signalfd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	return signalfd(-1, &set, SFD_CLOEXEC);
}

bool console_wait_fd(int fd)
{
	int sfd = open_signalfd();
	bool ok = false;

	for (;;) {
		struct pollfd pfd[2] = { { fd, POLLIN, 0 }, { sfd, POLLIN, 0 } };
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents) {
			ok = true;
			break;
		}
		if (pfd[1].revents)
			break;
	}
	if (sfd >= 0)
		close(sfd);
	return ok;
}

enum console_end console_loop(struct vm *vm, int in_fd)
{
	struct console_escape esc = { false };
	struct pending_input in = { .len = 0 };
	int sfd = open_signalfd();
	bool have_input = in_fd >= 0;

	for (;;) {
		struct pollfd pfd[3] = {
			{ vm_stop_fd(vm), POLLIN, 0 },
			{ sfd, POLLIN, 0 },
			{ have_input && in.off == in.len ? in_fd : -1, POLLIN, 0 },
		};
		bool quit = false;
		/* While the UART FIFO is full, retry delivery every few ms. */
		int timeout = in.off < in.len ? 5 : -1;

		if (poll(pfd, 3, timeout) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		if (pfd[1].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) > 0) {
				vm_request_stop(vm, VM_STOP_USER, 0);
				close(sfd);
				return CONSOLE_SIGNAL;
			}
		}
		if (pfd[2].revents && !read_input(in_fd, &esc, &in, &quit))
			have_input = false;
		if (quit) {
			vm_request_stop(vm, VM_STOP_USER, 0);
			if (sfd >= 0)
				close(sfd);
			return CONSOLE_QUIT;
		}
		if (in.off < in.len)
			in.off += vm_console_input(vm, in.buf + in.off, in.len - in.off);
	}
	if (sfd >= 0)
		close(sfd);
	return CONSOLE_STOPPED;
}

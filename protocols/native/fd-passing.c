/*
 * Descriptors passed over a unix socket (SCM_RIGHTS), which Node cannot
 * read or send: orchestrators hand a QMP monitor the migration's channel
 * this way (getfd, add-fd). Only the socket I/O is here; the JSON framing
 * and every decision stay in TypeScript.
 *
 *   watch(fd, onRead) -> handle   reads the socket with recvmsg as data comes,
 *                                 calling onRead(bytes, fds) for each read,
 *                                 onRead(null, [], 0) at its end and
 *                                 onRead(null, [], errno) on an error
 *   pause(handle), resume(handle) stop and restart reading
 *   unwatch(handle)               stops for good (the socket stays open)
 *   sendWithFds(fd, bytes, fds)   one sendmsg carrying fds: bytes sent
 *   accessMode(fd)                O_RDONLY, O_WRONLY or O_RDWR (fd sets match on it)
 *   dup(fd)                       a duplicate (close-on-exec), as an fd set hands out
 *
 * watch reads through a duplicate of the descriptor, so the net.Socket
 * that owns the original (and writes the answers) is left as it was; the
 * caller must never let Node read that socket too.
 */
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* Linux's SCM_MAX_FD: the most descriptors one message may carry. */
#define MAX_FDS 253
#define READ_BYTES 65536
/* Reads per wake-up before other work gets a turn. */
#define READS_PER_WAKE 16

/*
 * Freed once both its uv handle has closed (unwatch, or the socket's end)
 * and JavaScript has let go of its handle object (the finalizer): either
 * may come first, and a handle JavaScript still holds must stay valid.
 */
typedef struct {
  uv_poll_t poll;
  int fd;
  int closing;
  int closed;
  int held;
  napi_env env;
  napi_ref on_read;
  napi_async_context context;
} Watch;

static void throw_errno(napi_env env, const char *what, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_value code, text, error;
  napi_create_string_utf8(env, err == EAGAIN ? "EAGAIN" : "ERRNO", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_value errno_value;
  napi_create_int32(env, err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_throw(env, error);
}

/* Calls onRead(data, fds, err); an exception it throws becomes the process's uncaught exception. */
static void deliver(Watch *w, const char *data, size_t length, const int *fds, int nfds, int err) {
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value callback, recv, argv[3], result;
  napi_get_reference_value(env, w->on_read, &callback);
  /* make_callback needs an object for `this`: the global one. */
  napi_get_global(env, &recv);
  if (data != NULL) {
    void *copy;
    napi_create_buffer_copy(env, length, data, &copy, &argv[0]);
  } else {
    napi_get_null(env, &argv[0]);
  }
  napi_create_array_with_length(env, (size_t)nfds, &argv[1]);
  for (int i = 0; i < nfds; i++) {
    napi_value n;
    napi_create_int32(env, fds[i], &n);
    napi_set_element(env, argv[1], (uint32_t)i, n);
  }
  napi_create_int32(env, err, &argv[2]);
  if (callback != NULL && napi_make_callback(env, w->context, recv, callback, 3, argv, &result) == napi_pending_exception) {
    napi_value exception;
    napi_get_and_clear_last_exception(env, &exception);
    napi_fatal_exception(env, exception);
  }
  napi_close_handle_scope(env, scope);
}

static void on_closed(uv_handle_t *handle) {
  Watch *w = (Watch *)handle->data;
  close(w->fd);
  /* Outside any JavaScript call here: N-API needs a scope of its own. */
  napi_handle_scope scope;
  napi_open_handle_scope(w->env, &scope);
  napi_delete_reference(w->env, w->on_read);
  napi_async_destroy(w->env, w->context);
  napi_close_handle_scope(w->env, scope);
  w->closed = 1;
  if (!w->held) free(w);
}

static void stop(Watch *w) {
  if (w->closing) return;
  w->closing = 1;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_closed);
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  Watch *w = (Watch *)poll->data;
  (void)events;
  if (status < 0) {
    deliver(w, NULL, 0, NULL, 0, -status);
    stop(w);
    return;
  }
  static char buffer[READ_BYTES];
  union {
    char bytes[CMSG_SPACE(MAX_FDS * sizeof(int))];
    struct cmsghdr align;
  } control;
  for (int reads = 0; reads < READS_PER_WAKE && !w->closing; reads++) {
    struct iovec iov = {buffer, sizeof buffer};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes;
    msg.msg_controllen = sizeof control.bytes;
    ssize_t n = recvmsg(w->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      deliver(w, NULL, 0, NULL, 0, errno);
      stop(w);
      return;
    }
    int fds[MAX_FDS];
    int nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (int i = 0; i < count && nfds < MAX_FDS; i++) memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    if (n == 0) {
      /* Descriptors sent with no bytes at the very end are nobody's: closed. */
      for (int i = 0; i < nfds; i++) close(fds[i]);
      deliver(w, NULL, 0, NULL, 0, 0);
      stop(w);
      return;
    }
    deliver(w, buffer, (size_t)n, fds, nfds, 0);
  }
}

/* JavaScript let go of the handle: stop watching if nobody did, free once closed. */
static void on_finalize(napi_env env, void *data, void *hint) {
  Watch *w = (Watch *)data;
  (void)env;
  (void)hint;
  w->held = 0;
  if (w->closed) free(w);
  else stop(w);
}

static Watch *watch_of(napi_env env, napi_value value) {
  Watch *w = NULL;
  if (napi_get_value_external(env, value, (void **)&w) != napi_ok || w == NULL) {
    napi_throw_type_error(env, NULL, "expected a handle from watch()");
    return NULL;
  }
  return w;
}

static napi_value watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  napi_valuetype type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_typeof(env, argv[1], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "watch takes a descriptor and a function");
    return NULL;
  }
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) {
    throw_errno(env, "cannot duplicate the monitor socket", errno);
    return NULL;
  }
  Watch *w = calloc(1, sizeof *w);
  w->fd = copy;
  w->env = env;
  uv_loop_t *loop;
  napi_value name;
  napi_get_uv_event_loop(env, &loop);
  napi_create_reference(env, argv[1], 1, &w->on_read);
  napi_value resource;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "livemig:fd-passing", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &w->context);
  int err = uv_poll_init(loop, &w->poll, copy);
  if (err == 0) {
    w->poll.data = w;
    err = uv_poll_start(&w->poll, UV_READABLE, on_readable);
    if (err != 0) {
      w->closing = 1;
      uv_close((uv_handle_t *)&w->poll, on_closed);
      throw_errno(env, "cannot watch the monitor socket", -err);
      return NULL;
    }
  } else {
    close(copy);
    napi_delete_reference(env, w->on_read);
    napi_async_destroy(env, w->context);
    free(w);
    throw_errno(env, "cannot watch the monitor socket", -err);
    return NULL;
  }
  napi_value handle;
  w->held = 1;
  napi_create_external(env, w, on_finalize, NULL, &handle);
  return handle;
}

static napi_value one_handle(napi_env env, napi_callback_info info, Watch **w) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1) {
    napi_throw_type_error(env, NULL, "expected a handle from watch()");
    return NULL;
  }
  *w = watch_of(env, argv[0]);
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  return undefined;
}

static napi_value pause_watch(napi_env env, napi_callback_info info) {
  Watch *w;
  napi_value result = one_handle(env, info, &w);
  if (result != NULL && w != NULL && !w->closing) uv_poll_stop(&w->poll);
  return result;
}

static napi_value resume_watch(napi_env env, napi_callback_info info) {
  Watch *w;
  napi_value result = one_handle(env, info, &w);
  if (result != NULL && w != NULL && !w->closing) uv_poll_start(&w->poll, UV_READABLE, on_readable);
  return result;
}

static napi_value unwatch(napi_env env, napi_callback_info info) {
  Watch *w;
  napi_value result = one_handle(env, info, &w);
  if (result != NULL && w != NULL) stop(w);
  return result;
}

static napi_value send_with_fds(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  void *data;
  size_t length;
  bool is_array;
  uint32_t nfds;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok || napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[2], &nfds) != napi_ok || nfds == 0 || nfds > MAX_FDS || length == 0) {
    napi_throw_type_error(env, NULL, "sendWithFds takes a socket descriptor, a non-empty Buffer and 1 to 253 descriptors");
    return NULL;
  }
  int fds[MAX_FDS];
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value element;
    if (napi_get_element(env, argv[2], i, &element) != napi_ok || napi_get_value_int32(env, element, &fds[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "sendWithFds: every descriptor must be a number");
      return NULL;
    }
  }
  union {
    char bytes[CMSG_SPACE(MAX_FDS * sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct iovec iov = {data, length};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.bytes;
  msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
  memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
  ssize_t sent;
  do sent = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    throw_errno(env, "sendmsg with descriptors failed", errno);
    return NULL;
  }
  napi_value result;
  napi_create_int64(env, sent, &result);
  return result;
}

/* The call's one descriptor argument; 0 (a TypeError thrown) for anything else. */
static int one_fd(napi_env env, napi_callback_info info, const char *message, int32_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 || napi_get_value_int32(env, argv[0], fd) != napi_ok) {
    napi_throw_type_error(env, NULL, message);
    return 0;
  }
  return 1;
}

/* `value` as a number, or (when negative) an Error naming `what` and errno thrown. */
static napi_value int_result(napi_env env, int value, const char *what) {
  if (value < 0) {
    throw_errno(env, what, errno);
    return NULL;
  }
  napi_value result;
  napi_create_int32(env, value, &result);
  return result;
}

static napi_value access_mode(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!one_fd(env, info, "accessMode takes a descriptor", &fd)) return NULL;
  int flags = fcntl(fd, F_GETFL);
  return int_result(env, flags < 0 ? flags : (flags & O_ACCMODE), "fcntl(F_GETFL) failed");
}

static napi_value dup_fd(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!one_fd(env, info, "dup takes a descriptor", &fd)) return NULL;
  return int_result(env, fcntl(fd, F_DUPFD_CLOEXEC, 3), "dup failed");
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"watch", NULL, watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pause", NULL, pause_watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"resume", NULL, resume_watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unwatch", NULL, unwatch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendWithFds", NULL, send_with_fds, NULL, NULL, NULL, napi_enumerable, NULL},
      {"accessMode", NULL, access_mode, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dup", NULL, dup_fd, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

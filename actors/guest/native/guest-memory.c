/*
 * What Node cannot do to guest RAM. Gives it back to the OS: release-ram
 * frees each page once the source has sent it in postcopy. And faults it
 * in ahead of use: a destination pre-faults its RAM, as QEMU's prealloc.
 *
 * On giving back: Node has no way to do it. A guest
 * RAM slab is a SharedArrayBuffer from malloc, whose data starts a few
 * bytes into an OS page; pageOffset tells how far into the slab the next OS
 * page starts, so guest pages can be laid on OS pages. madvise(MADV_DONTNEED)
 * on the whole OS pages inside a view frees them, and every thread then
 * reads zeros there. Only pages wholly inside the view are touched, so
 * neither the allocator's header before the slab nor a neighbouring guest
 * page is.
 */
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

/* The bytes of the call's one Uint8Array argument; 0 (a TypeError thrown) for anything else. */
static int byte_view(napi_env env, napi_callback_info info, const char *message, void **data, size_t *length) {
  size_t argc = 1;
  napi_value argv[1];
  napi_typedarray_type type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_typedarray_info(env, argv[0], &type, length, data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, message);
    return 0;
  }
  return 1;
}

/*
 * The whole OS pages inside the call's one Uint8Array argument, [start, end)
 * (end <= start when there is none): only those may be advised, so that
 * neither the allocator's header before a slab nor a neighbouring guest
 * page is. 0 (a TypeError thrown) for anything but a Uint8Array.
 */
static int whole_pages(napi_env env, napi_callback_info info, const char *message, uintptr_t *start, uintptr_t *end) {
  void *data;
  size_t length;
  if (!byte_view(env, info, message, &data, &length)) return 0;
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  *start = ((uintptr_t)data + page - 1) & ~(page - 1);
  *end = ((uintptr_t)data + length) & ~(page - 1);
  return 1;
}

/* releasePages(view: Uint8Array): number of bytes given back. */
static napi_value release_pages(napi_env env, napi_callback_info info) {
  uintptr_t start, end;
  if (!whole_pages(env, info, "releasePages takes one Uint8Array", &start, &end)) return NULL;
  size_t released = 0;
  if (end > start) {
    if (madvise((void *)start, end - start, MADV_DONTNEED) != 0) {
      napi_throw_error(env, NULL, "madvise(MADV_DONTNEED) failed on guest RAM");
      return NULL;
    }
    released = end - start;
  }
  napi_value result;
  napi_create_double(env, (double)released, &result);
  return result;
}

/*
 * populatePages(view: Uint8Array): faults in the whole OS pages inside the
 * view, writable, without touching a byte (MADV_POPULATE_WRITE, Linux
 * 5.14+, what QEMU's prealloc uses where it can): safe while other threads
 * write there. Touching each page from JavaScript instead costs a read
 * fault and then a write fault per page (an atomic add is a load and a
 * compare-exchange), over twice the time. Returns false where the kernel
 * does not know the advice, so that the caller falls back to touching.
 */
static napi_value populate_pages(napi_env env, napi_callback_info info) {
  uintptr_t start, end;
  if (!whole_pages(env, info, "populatePages takes one Uint8Array", &start, &end)) return NULL;
  int populated = 1;
  if (end > start) {
#ifdef MADV_POPULATE_WRITE
    if (madvise((void *)start, end - start, MADV_POPULATE_WRITE) != 0) {
      if (errno != EINVAL) {
        napi_throw_error(env, NULL, "madvise(MADV_POPULATE_WRITE) failed on guest RAM");
        return NULL;
      }
      populated = 0;
    }
#else
    populated = 0;
#endif
  }
  napi_value result;
  napi_get_boolean(env, populated, &result);
  return result;
}

/* pageOffset(view: Uint8Array): bytes from the view's start to the next OS page boundary. */
static napi_value page_offset(napi_env env, napi_callback_info info) {
  void *data;
  size_t length;
  if (!byte_view(env, info, "pageOffset takes one Uint8Array", &data, &length)) return NULL;
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  napi_value result;
  napi_create_double(env, (double)((page - (uintptr_t)data % page) % page), &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_value size;
  napi_create_function(env, "releasePages", NAPI_AUTO_LENGTH, release_pages, NULL, &fn);
  napi_set_named_property(env, exports, "releasePages", fn);
  napi_create_function(env, "populatePages", NAPI_AUTO_LENGTH, populate_pages, NULL, &fn);
  napi_set_named_property(env, exports, "populatePages", fn);
  napi_create_function(env, "pageOffset", NAPI_AUTO_LENGTH, page_offset, NULL, &fn);
  napi_set_named_property(env, exports, "pageOffset", fn);
  napi_create_double(env, (double)sysconf(_SC_PAGESIZE), &size);
  napi_set_named_property(env, exports, "pageSize", size);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

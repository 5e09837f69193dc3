// LD_PRELOAD shim for benchmark experiments (see docs/benchmarks.md): sets
// TCP_NODELAY on every socket a process accepts, to show what the node would
// gain from `HttpServer::tcp_nodelay(true)`. Not used by the node itself.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
static void nd(int fd){ if(fd>=0){int one=1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);} }
int accept(int s, struct sockaddr *a, socklen_t *l){ static int (*real)(int,struct sockaddr*,socklen_t*); if(!real) real=dlsym(RTLD_NEXT,"accept"); int fd=real(s,a,l); nd(fd); return fd; }
int accept4(int s, struct sockaddr *a, socklen_t *l, int f){ static int (*real)(int,struct sockaddr*,socklen_t*,int); if(!real) real=dlsym(RTLD_NEXT,"accept4"); int fd=real(s,a,l,f); nd(fd); return fd; }

/* What the kernel charges for the file and process work one task needs, from C, in the
 * current folder: mkdir, create, write, stat, a journal-like append under flock, and
 * posix_spawn + waitpid of /bin/true (the parent's CPU only).
 *   cc -O2 -o /tmp/fs_floor bench/fs_floor.c && (cd SOME_DIR && /tmp/fs_floor) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/file.h>
#include <sys/resource.h>
extern char **environ;
static double cpu(){ struct rusage r; getrusage(RUSAGE_SELF,&r); return r.ru_utime.tv_sec*1e6+r.ru_utime.tv_usec+r.ru_stime.tv_sec*1e6+r.ru_stime.tv_usec; }
int main(int argc,char**argv){
  int N=2000; char p[256]; double c;
  mkdir("d",0755);
  c=cpu(); for(int i=0;i<N;i++){ snprintf(p,256,"d/%d",i); mkdir(p,0755);} printf("mkdir: %.1f us\n",(cpu()-c)/N);
  c=cpu(); for(int i=0;i<N;i++){ snprintf(p,256,"d/%d/f",i); close(open(p,O_CREAT|O_WRONLY|O_EXCL,0644));} printf("create file: %.1f us\n",(cpu()-c)/N);
  c=cpu(); for(int i=0;i<N;i++){ snprintf(p,256,"d/%d/f",i); int fd=open(p,O_WRONLY); write(fd,"hello world\n",12); close(fd);} printf("open+write+close: %.1f us\n",(cpu()-c)/N);
  c=cpu(); for(int i=0;i<N;i++){ struct stat st; snprintf(p,256,"d/%d/f",i); stat(p,&st);} printf("stat: %.1f us\n",(cpu()-c)/N);
  int fd=open("j",O_CREAT|O_RDWR|O_APPEND,0644);
  c=cpu(); for(int i=0;i<N;i++){ flock(fd,LOCK_EX); struct stat st; fstat(fd,&st); write(fd,"{\"seq\":1,\"ts\":\"2026\",\"kind\":\"task.started\",\"task\":\"t-0123\"}\n",60); flock(fd,LOCK_UN);} printf("journal append (flock,fstat,write,unlock): %.1f us\n",(cpu()-c)/N);
  c=cpu(); for(int i=0;i<N;i++){ getppid(); } printf("getppid: %.2f us\n",(cpu()-c)/N);
  char *av[]={"/bin/true",NULL};
  c=cpu(); for(int i=0;i<500;i++){ pid_t pid; posix_spawn(&pid,"/bin/true",NULL,NULL,av,environ); int st; waitpid(pid,&st,0);} printf("posix_spawn+wait (parent only): %.1f us\n",(cpu()-c)/500);
  c=cpu(); for(int i=0;i<N;i++){ snprintf(p,256,"d/%d/f",i); unlink(p); snprintf(p,256,"d/%d",i); rmdir(p);} printf("unlink+rmdir: %.1f us\n",(cpu()-c)/N);
  return 0;
}

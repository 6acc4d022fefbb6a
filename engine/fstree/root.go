package fstree

// Root is an open source directory: the client side's view of SRC. Paths
// below it are resolved without following symbolic links, so a link in the
// tree is mirrored as a link and never makes gosync read outside SRC.
//
// Two implementations: root_fd.go on Linux, macOS and FreeBSD (descriptors
// and *at system calls, openat2 on Linux), and root_portable.go on Windows
// and wherever the build tag gosync_portable is set (os.Root and os.File
// only), so that the portable one is tested on Linux too.
//
// Methods take slash-separated paths relative to the root; "" is the root.

// SPDX-License-Identifier: MIT
// epoll and eventfd, which Swift's Glibc module does not export. Headers only: the calls are
// used from Swift as they are.
#pragma once
#include <sys/epoll.h>
#include <sys/eventfd.h>

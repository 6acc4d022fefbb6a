/*
 * bcryptprimitives.dll for wine 8 (Debian 12), which lacks it. Go 1.24+
 * programs for Windows call its ProcessPrng at start; Windows 10 and later
 * have it. This one fills the buffer from RtlGenRandom (advapi32's
 * SystemFunction036). Used only to run gosync's Windows test binaries and
 * client under wine in CI (.ci/wine-setup); never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}

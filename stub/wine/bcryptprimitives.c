/* A stand-in for Windows' bcryptprimitives.dll under Wine 8, which lacks it.
 * Rust's standard library (1.78 and later) imports ProcessPrng from it to seed hash maps;
 * Windows 10 and later have it. We export ProcessPrng on top of RtlGenRandom
 * (advapi32's SystemFunction036), which Wine does have. `isapi-freeze serve` puts it into
 * the Wine prefix it runs isapi-host in; it is never shipped in an isapi-freeze output. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

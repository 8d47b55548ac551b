; The dirtying guest for the QEMU side of the postcopy benchmark: a boot
; sector that never stops writing. Each pass adds 1 to byte 0 of every 4 KiB
; page from 1 MiB up to (not including) 100 MiB, then bumps a 32-bit pass
; count kept at physical 0x600, which the bench reads with HMP `xp`.
; Built by dirty-guest-image.ts: nasm -f bin dirty.asm -o <image>

RANGE_START  equ 1 << 20
RANGE_END    equ 100 << 20
PAGE_SIZE    equ 1 << 12
PASS_COUNT   equ 0x600

[bits 16]
[org 0x7c00]
real_mode:
        cli
        xor   ax, ax
        mov   ds, ax
        mov   ss, ax
        mov   sp, 0x7c00
        mov   dword [PASS_COUNT], eax

        ; Without A20 every odd MiB aliases the one below it; port 0x92 bit 1
        ; opens the gate (bit 0 would reset the machine).
        in    al, 0x92
        and   al, 0xfe
        or    al, 0x02
        out   0x92, al

        lgdt  [descriptor_table_pointer]
        mov   eax, cr0
        or    eax, 1
        mov   cr0, eax
        jmp   dword FLAT_CODE:protected_mode

[bits 32]
protected_mode:
        mov   ax, FLAT_DATA
        mov   ds, ax
        mov   es, ax
        mov   ss, ax
        mov   esp, 0x7000
pass:
        mov   ebx, RANGE_START
page:
        inc   byte [ebx]
        add   ebx, PAGE_SIZE
        cmp   ebx, RANGE_END
        jne   page
        inc   dword [PASS_COUNT]
        jmp   pass

; Two flat 4 GiB segments after the required empty entry.
align 8
descriptor_table:
        dq    0
FLAT_CODE equ $ - descriptor_table
        dq    0x00cf9a000000ffff
FLAT_DATA equ $ - descriptor_table
        dq    0x00cf92000000ffff
descriptor_table_end:

descriptor_table_pointer:
        dw    descriptor_table_end - descriptor_table - 1
        dd    descriptor_table

        times 510 - ($ - $$) db 0
        dw    0xaa55

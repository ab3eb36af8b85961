/* PVH entry for Kindling test guests.
 *
 * A PVH loader (kindling-vmm, QEMU, Firecracker) enters at pvh_start in 32-bit
 * protected mode, paging off, %ebx = physical address of hvm_start_info. We
 * switch to long mode with static identity page tables (2 MiB pages over the
 * first 4 GiB, so the LAPIC and any MMIO hole are reachable) and call
 * kt_main(start_info). Page tables are assembled at build time because every
 * guest supervisor instruction is emulated on nested hypervisors: a loop that
 * filled them at run time would cost thousands of emulated instructions.
 *
 * Application processors start in real mode at the trampoline, which the BSP
 * copies to KT_TRAMPOLINE_ADDR (see smp.cpp); it shares the GDT and tables.
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define CR0_PE 0x1
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_CODE32 0x18
#define BSP_STACK_SIZE 16384
#define AP_STACK_SIZE 4096
#define MAX_APS 31

    .section .note.pvh, "a", @note
    .balign 4
    .long 4              /* name size: "Xen\0" */
    .long 4              /* desc size */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .long pvh_start

    .section .text.entry, "ax", @progbits
    .code32
    .globl pvh_start
pvh_start:
    cli
    movl %ebx, kt_start_info_phys
    lgdtl gdt_desc
    movw $SEL_DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl $(bsp_stack + BSP_STACK_SIZE), %esp
    call enter_paging32
    ljmpl $SEL_CODE64, $bsp_long

/* Turns on PAE paging and long mode; shared by BSP and APs. */
enter_paging32:
    movl %cr4, %eax
    orl $CR4_PAE, %eax
    movl %eax, %cr4
    movl $pml4, %eax
    movl %eax, %cr3
    movl $MSR_EFER, %ecx
    rdmsr
    orl $EFER_LME, %eax
    wrmsr
    movl %cr0, %eax
    orl $(CR0_PG | CR0_PE), %eax
    movl %eax, %cr0
    ret

    .code64
bsp_long:
    movw $SEL_DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movabsq $(bsp_stack + BSP_STACK_SIZE), %rsp
    movl kt_start_info_phys, %edi
    call kt_main
1:  cli
    hlt
    jmp 1b

/* ---- AP trampoline: copied below 1 MiB; runs with CS base = copy address ---- */
    .code16
    .globl kt_trampoline_start
kt_trampoline_start:
    cli
    movw %cs, %ax
    movw %ax, %ds
    lgdtl (tramp_gdt_desc - kt_trampoline_start)
    movl %cr0, %eax
    orl $CR0_PE, %eax
    movl %eax, %cr0
    ljmpl $SEL_CODE32, $ap_protected
    .balign 8
tramp_gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt
    .globl kt_trampoline_end
kt_trampoline_end:

    .code32
ap_protected:
    movw $SEL_DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    /* Each AP takes the next stack slot; the counter is the AP's index. */
    movl $1, %eax
    lock xaddl %eax, ap_next_index
    movl %eax, %edi
    cmpl $MAX_APS, %edi
    jae ap_park32
    incl %eax
    shll $12, %eax
    addl $ap_stacks, %eax
    movl %eax, %esp
    pushl %edi
    call enter_paging32
    popl %edi
    ljmpl $SEL_CODE64, $ap_long
ap_park32:
    hlt
    jmp ap_park32

    .code64
ap_long:
    movw $SEL_DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %esp, %esp     /* zero-extend the 32-bit stack pointer */
    andq $-16, %rsp
    call kt_ap_main
2:  cli
    hlt
    jmp 2b

    .section .data
    .balign 16
gdt:
    .quad 0
    .quad 0x00af9a000000ffff   /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff   /* 0x10: data */
    .quad 0x00cf9a000000ffff   /* 0x18: 32-bit code (AP trampoline) */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt
    .globl kt_start_info_phys
kt_start_info_phys:
    .long 0
ap_next_index:
    .long 0

    .balign 4096
pml4:
    .quad pdpt + 0x3
    .fill 511, 8, 0
pdpt:
    .quad pd0 + 0x3
    .quad pd0 + 0x1000 + 0x3
    .quad pd0 + 0x2000 + 0x3
    .quad pd0 + 0x3000 + 0x3
    .fill 508, 8, 0
pd0:
    .set page, 0
    .rept 2048
    .quad (page << 21) | 0x83     /* present, writable, 2 MiB */
    .set page, page + 1
    .endr

    .section .bss
    .balign 4096
bsp_stack:
    .skip BSP_STACK_SIZE
ap_stacks:
    .skip AP_STACK_SIZE * (MAX_APS + 1)

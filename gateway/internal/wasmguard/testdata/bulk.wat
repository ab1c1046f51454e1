;; bulk: loops doing bulk memory and table work, whose cost is in their length operand, not in
;; their code size. fill_loop(n) fills 4 MiB n times (0 = forever); copy_once and fill_small do one
;; operation and return a byte of the result, so rewriting must keep the operands intact.
(module
  (memory (export "memory") 128)
  (table $t 1024 funcref)
  (elem declare func $f)
  (data $d "0123456789abcdef")
  (func $f)
  (func (export "fill_loop") (param $n i32)
    (local $i i32)
    (loop $l
      (memory.fill (i32.const 0) (i32.const 7) (i32.const 4194304))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.or (i32.eqz (local.get $n)) (i32.lt_u (local.get $i) (local.get $n))))))
  (func (export "copy_loop")
    (loop $l
      (memory.copy (i32.const 4194304) (i32.const 0) (i32.const 4194304))
      (br $l)))
  (func (export "table_loop")
    (loop $l
      (table.fill $t (i32.const 0) (ref.func $f) (i32.const 1024))
      (table.copy $t $t (i32.const 0) (i32.const 512) (i32.const 512))
      (br $l)))
  (func (export "copy_once") (result i32)
    (memory.init $d (i32.const 100) (i32.const 2) (i32.const 8))
    (memory.copy (i32.const 200) (i32.const 100) (i32.const 8))
    (i32.load8_u (i32.const 203)))
  (func (export "fill_small") (result i32)
    (memory.fill (i32.const 300) (i32.const 42) (i32.const 3))
    (i32.add (i32.load8_u (i32.const 302)) (i32.load8_u (i32.const 303))))
)

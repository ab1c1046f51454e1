;; calls: function indices across the import shift. Calls to imported and defined functions,
;; call_indirect through every form of element segment (index vectors and expressions; active,
;; passive and declarative), ref.func in code and in a global initialiser, a start function,
;; exports of defined and imported functions, a loop-free recursive function, and a trap whose
;; stack trace names functions (the name section is renumbered).
(module
  (import "env" "add" (func $add (param i32 i32) (result i32)))
  (import "env" "twice" (func $twice (param i32) (result i32)))
  (type $unary (func (param i32) (result i32)))
  (table $t 8 funcref)
  (table $t2 4 funcref)
  (global $started (mut i32) (i32.const 0))
  (global $fref funcref (ref.func $inc))
  (elem (i32.const 0) $inc $dec $twice)                          ;; flags 0
  (elem $passive func $square $inc)                               ;; flags 1
  (elem (table $t2) (i32.const 0) func $dec)                      ;; flags 2
  (elem declare func $neg)                                        ;; flags 3
  (elem (i32.const 3) funcref (ref.func $square) (ref.null func)) ;; flags 4
  (elem $pexpr funcref (ref.func $neg) (ref.func $inc))           ;; flags 5
  (elem (table $t2) (i32.const 1) funcref (ref.func $square))     ;; flags 6
  (elem declare funcref (ref.func $dec))                          ;; flags 7
  (start $start)
  (func $start (global.set $started (call $add (i32.const 40) (i32.const 2))))
  (func $inc (type $unary) (i32.add (local.get 0) (i32.const 1)))
  (func $dec (type $unary) (i32.sub (local.get 0) (i32.const 1)))
  (func $square (type $unary) (i32.mul (local.get 0) (local.get 0)))
  (func $neg (type $unary) (i32.sub (i32.const 0) (local.get 0)))
  (func $started (export "started") (result i32) (global.get $started))
  ;; add(twice(inc(x)), square(x))
  (func $direct (export "direct") (param i32) (result i32)
    (call $add (call $twice (call $inc (local.get 0))) (call $square (local.get 0))))
  (func $indirect (export "indirect") (param i32 i32) (result i32)
    (call_indirect $t (type $unary) (local.get 0) (local.get 1)))
  (func $indirect2 (export "indirect2") (param i32 i32) (result i32)
    (call_indirect $t2 (type $unary) (local.get 0) (local.get 1)))
  (func $passive (export "passive") (param i32 i32) (result i32)
    (table.init $t $passive (i32.const 4) (i32.const 0) (i32.const 2))
    (table.init $t $pexpr (i32.const 6) (i32.const 0) (i32.const 2))
    (call_indirect $t (type $unary) (local.get 0) (local.get 1)))
  (func $reffunc (export "reffunc") (param i32) (result i32)
    (table.set $t (i32.const 7) (ref.func $neg))
    (call_indirect $t (type $unary) (local.get 0) (i32.const 7)))
  (func $globalref (export "globalref") (param i32) (result i32)
    (table.set $t (i32.const 7) (global.get $fref))
    (call_indirect $t (type $unary) (local.get 0) (i32.const 7)))
  ;; recurse(n) = n by n nested calls and no loop: counted at its entry.
  (func $recurse (export "recurse") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (call $inc (call $recurse (call $dec (local.get 0)))))))
  (func $boom (unreachable))
  (func $trap (export "trap") (call $boom))
  (export "inc" (func $inc))
  (export "twice" (func $twice))
  (export "table" (table $t)))

;; loops: nested loops, a loop at a function's start (Go's shape) and in its middle, loops and
;; blocks with parameters and several results (multi-value block types), br_table, typed select,
;; and endless loops the deadline must stop.
(module
  (import "env" "add" (func $add (param i32 i32) (result i32)))
  (type $pair (func (param i32 i32) (result i32 i32)))
  (memory (export "memory") 1)
  ;; sum(n) = Σ_{i<n} Σ_{j<i} j, with two nested loops.
  (func (export "sum") (param $n i32) (result i64)
    (local $i i32) (local $j i32) (local $acc i64)
    (block $done
      (loop $outer
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $j (i32.const 0))
        (block $inner_done
          (loop $inner
            (br_if $inner_done (i32.ge_u (local.get $j) (local.get $i)))
            (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $j))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $inner)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (local.get $acc))
  ;; fib(n) by a loop that takes and returns two values.
  (func (export "fib") (param $n i32) (result i64)
    (local $a i64) (local $b i64) (local $k i32)
    i64.const 0
    i64.const 1
    loop $l (param i64 i64) (result i64 i64)
      local.set $b
      local.set $a
      local.get $b
      local.get $a
      local.get $b
      i64.add
      local.get $k
      i32.const 1
      i32.add
      local.tee $k
      local.get $n
      i32.lt_u
      br_if $l
    end
    drop)
  ;; swapsum(x, y) = x + 2y through a block typed by $pair and an if with two results.
  (func (export "swapsum") (param i32 i32) (result i32)
    local.get 0
    local.get 1
    block (type $pair)
      local.set 0
      local.set 1
      local.get 0
      local.get 1
    end
    local.get 0
    if (param i32 i32) (result i32 i32)
      call $add
      local.get 1
    else
      drop
      drop
      i32.const 0
      i32.const 0
    end
    call $add
    local.get 1
    call $add)
  ;; dispatch(n): a Go-style function — a block, then a loop at its start, a br_table dispatcher
  ;; and a call in the loop; counts down n through the states.
  (func (export "dispatch") (param $n i32) (result i32)
    (local $state i32) (local $acc i32)
    block $exit
      loop $top
        block $s2
          block $s1
            block $s0
              local.get $state
              br_table $s0 $s1 $s2
            end
            ;; state 0: acc = add(acc, n)
            (local.set $acc (call $add (local.get $acc) (local.get $n)))
            (local.set $state (i32.const 1))
            br $top
          end
          ;; state 1: n--, back to state 0 unless n is 0
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (local.set $state (select (result i32) (i32.const 2) (i32.const 0) (i32.eqz (local.get $n))))
          br $top
        end
        br $exit
      end
    end
    local.get $acc)
  (func (export "spin") (loop $l (br $l)))
  (func (export "spin_calls") (loop $l (drop (call $add (i32.const 1) (i32.const 2))) (br $l)))
  ;; A loop whose body is long straight-line code weighs more than a short one.
  (func (export "heavy") (param $n i32) (result i32)
    (local $x i32)
    (loop $l
      (local.set $x (i32.add (local.get $x) (i32.load (i32.const 0))))
      (local.set $x (i32.add (local.get $x) (i32.load (i32.const 4))))
      (local.set $x (i32.add (local.get $x) (i32.load (i32.const 8))))
      (local.set $x (i32.add (local.get $x) (i32.load (i32.const 12))))
      (local.set $x (i32.add (local.get $x) (i32.load (i32.const 16))))
      (local.set $x (i32.add (local.get $x) (i32.load (i32.const 20))))
      (local.set $x (i32.add (local.get $x) (i32.load (i32.const 24))))
      (local.set $x (i32.add (local.get $x) (i32.load (i32.const 28))))
      (local.set $x (i32.add (local.get $x) (i32.load (i32.const 32))))
      (local.set $x (i32.add (local.get $x) (i32.load (i32.const 36))))
      (local.set $x (i32.add (local.get $x) (i32.load (i32.const 40))))
      (local.set $x (i32.add (local.get $x) (i32.load (i32.const 44))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (local.get $x)))

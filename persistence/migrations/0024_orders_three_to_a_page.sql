-- An order's row is compressed where it is, so that three fit in a page
-- instead of two.
--
-- A completed order's row is about 2.9 KB, of which its result document is
-- 2.5 KB: two rows to an 8 KB page, with a third of the page left empty.
-- Migration 0006 kept the result uncompressed (toast_tuple_target = 8160)
-- because PostgreSQL, above its 2 KB threshold, would compress it with
-- pglz, slowly and to little effect, and then move it to the TOAST table.
-- Compressed with lz4 the result is about 1.8 KB (its ids, SKUs and member
-- names repeat; the ciphertext and the signatures do not shrink), the row
-- about 2.15 KB, and three rows fill a page. The orders' heap, which every
-- checkout extends and which the kernel writes out in a burst every 30 s
-- (docs/performance.md), grows by a third less, and so does the order's
-- WAL record.
--
-- A row above PostgreSQL's threshold (2032 bytes, the default target,
-- restored here) is compressed column by column, the largest first, until
-- it is under the target. With every text column's storage MAIN, a column
-- is never moved out of the row into the TOAST table unless the row is
-- still above 8160 bytes once compressed, as before: a column left at
-- EXTENDED would be moved out first, for as long as the row stays above
-- the target, which a compressed order still is. A text column added to
-- orders later must be MAIN as well.
--
-- Only values written from now on are compressed: the rows stored before
-- stay as they are and read as before. Each ALTER takes the table's lock
-- only to change the catalog; the table is not rewritten.
--
-- lz4 is built into PostgreSQL's Debian, RHEL and PGDG packages. A server
-- built without it keeps the orders as they were (nothing is changed here
-- then), rather than compressing every checkout with pglz.
DO $$
BEGIN
  ALTER TABLE orders
    ALTER COLUMN result SET COMPRESSION lz4,
    ALTER COLUMN items SET COMPRESSION lz4,
    ALTER COLUMN order_id SET STORAGE MAIN,
    ALTER COLUMN customer_id SET STORAGE MAIN,
    ALTER COLUMN email SET STORAGE MAIN,
    ALTER COLUMN status SET STORAGE MAIN,
    ALTER COLUMN currency SET STORAGE MAIN,
    ALTER COLUMN payment_id SET STORAGE MAIN,
    ALTER COLUMN finance_entry_id SET STORAGE MAIN,
    ALTER COLUMN result SET STORAGE MAIN,
    ALTER COLUMN items SET STORAGE MAIN;
  ALTER TABLE orders RESET (toast_tuple_target);
EXCEPTION WHEN feature_not_supported THEN
  RAISE NOTICE 'orders are stored uncompressed: %', SQLERRM;
END
$$;

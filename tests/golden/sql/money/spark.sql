WITH `vo` AS (
  SELECT
    *
  FROM `orders` AS `o`
  WHERE
    `o`.`created_at` IS NULL
    OR `o`.`created_at` <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
), `ve` AS (
  SELECT
    *
  FROM `events` AS `e`
  WHERE
    `e`.`at` IS NULL OR `e`.`at` <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
), `o_agg` AS (
  SELECT
    `o`.`customer_id` AS `customer_id`,
    SUM(CASE WHEN `o`.`status` = 'paid' THEN CAST(`o`.`total` AS DECIMAL(24, 6)) END) AS `a0`,
    COUNT(*) AS `a1`
  FROM `vo` AS `o`
  GROUP BY
    `o`.`customer_id`
)
SELECT
  COALESCE(`c`.`id`, `o_agg`.`customer_id`) AS `customer_id`
FROM `customers` AS `c`
FULL JOIN `o_agg`
  ON `o_agg`.`customer_id` = `c`.`id`
WHERE
  NOT COALESCE(`c`.`id`, `o_agg`.`customer_id`) IS NULL
  AND (
    `c`.`registered_at` IS NULL
    OR `c`.`registered_at` <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
  )
  AND (
    ROUND(
      CAST(COALESCE(`o_agg`.`a0`, CAST(0 AS DECIMAL(38, 6))) AS DECIMAL(38, 12)) / NULLIF(CAST(COALESCE(`o_agg`.`a1`, 0) AS DECIMAL(38, 12)), 0),
      6
    ) > 10.5
    AND ROUND(CAST(`c`.`score` AS DECIMAL(24, 6)), 1) = 2.5
    AND CAST(`c`.`score` AS DECIMAL(24, 6)) % NULLIF(2, 0) = 1
    AND -(
      CAST(`c`.`score` AS DECIMAL(24, 6))
    ) < 0
  )

WITH `vo` AS (
  SELECT
    *
  FROM `orders`
  WHERE
    `created_at` <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
    OR `created_at` IS NULL
), `ve` AS (
  SELECT
    *
  FROM `events`
  WHERE
    `at` <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP) OR `at` IS NULL
), `i_agg` AS (
  SELECT
    `o`.`customer_id` AS `customer_id`,
    COLLECT_SET(`i`.`category`) AS `a0`
  FROM `order_items` AS `i`
  INNER JOIN `vo` AS `o`
    ON `i`.`order_id` = `o`.`id`
  GROUP BY
    `o`.`customer_id`
), `ids` AS (
  SELECT
    `id`
  FROM (
    SELECT
      `id` AS `id`
    FROM `customers`
    UNION
    SELECT
      `customer_id`
    FROM `vo`
    UNION
    SELECT
      `customer_id`
    FROM `ve`
  ) AS `u`
  WHERE
    NOT `id` IS NULL
)
SELECT
  `ids`.`id` AS `customer_id`
FROM `ids`
LEFT JOIN `customers` AS `c`
  ON `c`.`id` = `ids`.`id`
LEFT JOIN `i_agg`
  ON `i_agg`.`customer_id` = `ids`.`id`
WHERE
  (
    `c`.`registered_at` IS NULL
    OR `c`.`registered_at` <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
  )
  AND COALESCE(
    (
      SUBSTRING(LOWER(`c`.`country`), 1, LENGTH('p')) = 'p'
      AND LOCATE('@', `c`.`email`) > 0
      AND `c`.`email` RLIKE '(?i)^a'
      AND CASE
        WHEN 'coat' IS NULL OR COALESCE(`i_agg`.`a0`, CAST(ARRAY() AS ARRAY<STRING>)) IS NULL
        THEN NULL
        ELSE COALESCE(
          ARRAY_CONTAINS(COALESCE(`i_agg`.`a0`, CAST(ARRAY() AS ARRAY<STRING>)), 'coat'),
          FALSE
        )
      END
      AND CASE WHEN `c`.`tags` IS NULL THEN NULL ELSE SIZE(`c`.`tags`) END > 1
    ),
    FALSE
  )
